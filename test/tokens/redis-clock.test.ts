import { describe, expect, it } from 'vitest';
import { RedisClock, scriptBudgetMs } from '../../src/tokens/redis-clock.js';

describe('RedisClock', () => {
  it('builds deadlines from a lower bound of the offset, so they are never later than meant', async () => {
    // Redis' clock is 1 000 000 ms ahead of the local monotonic one; TIME takes 40 ms there and
    // back and Redis reads its clock 10 ms after it was asked.
    let local = 5_000;
    const clock = new RedisClock(
      async () => {
        const redisMs = local + 10 + 1_000_000;
        local += 40;
        return [String(Math.floor(redisMs / 1000)), String((redisMs % 1000) * 1000)];
      },
      () => local,
    );
    const deadline = await clock.deadline(750);
    // True deadline in Redis' clock: now (local) + offset + budget.
    const trueDeadline = local + 1_000_000 + 750;
    expect(deadline).toBeLessThanOrEqual(trueDeadline);
    expect(trueDeadline - deadline).toBeLessThanOrEqual(40);
  });

  it('measures once for concurrent callers and again after a reset', async () => {
    let calls = 0;
    const clock = new RedisClock(async () => {
      calls++;
      return ['100', '0'];
    }, () => 0);
    await Promise.all([clock.deadline(1), clock.deadline(1), clock.deadline(1)]);
    expect(calls).toBe(1);
    await clock.deadline(1);
    expect(calls).toBe(1);
    clock.reset();
    await clock.deadline(1);
    expect(calls).toBe(2);
  });

  it('fails the deadline when TIME fails, and measures afresh next time', async () => {
    let fail = true;
    const clock = new RedisClock(async () => {
      if (fail) throw new Error('down');
      return ['1', '0'];
    }, () => 0);
    await expect(clock.deadline(1)).rejects.toThrow('down');
    fail = false;
    await expect(clock.deadline(5)).resolves.toBe(1005);
  });

  it('a TIME reader that throws at once does not wedge the clock (the next request measures afresh)', async () => {
    let fail = true;
    const clock = new RedisClock(() => {
      if (fail) throw new Error('connection is closed');
      return Promise.resolve(['1', '0'] as [string, string]);
    }, () => 0);
    await expect(clock.deadline(1)).rejects.toThrow('connection is closed');
    fail = false;
    await expect(clock.deadline(5)).resolves.toBe(1005);
  });

  it('leaves a reply margin of a quarter of the command timeout, at most 250 ms', () => {
    expect(scriptBudgetMs(1_000)).toBe(750);
    expect(scriptBudgetMs(500)).toBe(375);
    expect(scriptBudgetMs(10_000)).toBe(9_750);
    expect(scriptBudgetMs(1)).toBe(1);
  });
});
