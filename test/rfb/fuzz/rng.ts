/**
 * A seeded, fast PRNG for the fuzz harness (sfc32 seeded through splitmix32): millions of inputs
 * need cheap randomness, and a seed must reproduce an input exactly.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = splitmix();
    this.#b = splitmix();
    this.#c = splitmix();
    this.#d = splitmix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, n). */
  int(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** Uniform in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Small sizes are likelier than large: uniform in [0, 2^k) for k uniform in [0, maxBits]. */
  size(maxBits: number): number {
    return this.int(1 << this.int(maxBits + 1));
  }

  /**
   * n random bytes. Long runs are copied from a fixed random pool at a random offset: generating
   * every byte afresh was a quarter of the fuzzer's time, and slices of 1 MiB of noise at random
   * offsets are just as good at random inputs.
   */
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    if (n > 32 && n <= POOL_BYTES) {
      const at = this.int(POOL_BYTES - n + 1);
      pool().copy(b, 0, at, at + n);
      return b;
    }
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

const POOL_BYTES = 1 << 20;
let noise: Buffer | null = null;

function pool(): Buffer {
  if (noise === null) {
    const rng = new Rng(0x6e6f6973);
    noise = Buffer.allocUnsafe(POOL_BYTES);
    for (let i = 0; i < POOL_BYTES; i += 4) noise.writeUInt32LE(rng.u32(), i);
  }
  return noise;
}
