/**
 * The TypeScript type of a configuration value, derived from its JSON schema (CONFIG_SCHEMA is
 * `as const`), so the schema is the one source of truth for both validation and types.
 *
 * Covers the subset the schema uses: `type` (one name or a list, `null` included), `enum`,
 * objects with `properties` (a property is present after validation when it has a `default` or
 * is `required`; otherwise optional) or with `additionalProperties` (a record), and arrays.
 */
type Primitive<T> = T extends 'string' ? string : T extends 'integer' | 'number' ? number : T extends 'boolean' ? boolean : T extends 'null' ? null : never;

type Required<S> = S extends { readonly required: readonly (infer K)[] } ? K : never;
type Defaulted<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P];

type ObjectOf<S, P> = { -readonly [K in keyof P as K extends Defaulted<P> | Required<S> ? K : never]: Infer<P[K]> } & {
  -readonly [K in keyof P as K extends Defaulted<P> | Required<S> ? never : K]?: Infer<P[K]>;
};

export type Infer<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly properties: infer P }
    ? Flatten<ObjectOf<S, P>>
    : S extends { readonly additionalProperties: infer A extends object }
      ? Record<string, Infer<A>>
      : S extends { readonly type: 'array'; readonly items: infer I }
        ? Infer<I>[]
        : S extends { readonly type: readonly (infer T)[] }
          ? Primitive<T>
          : S extends { readonly type: infer T }
            ? Primitive<T>
            : unknown;

type Flatten<T> = { [K in keyof T]: T[K] };
