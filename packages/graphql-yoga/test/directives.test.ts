import { makeExecutableSchema } from '@graphql-tools/schema';
import { createQuiesce, isQuiesceError, type QuiesceEngine } from '@quiesce/core';
import { GraphQLBoolean, GraphQLObjectType, GraphQLSchema } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { quiesceDirectives, useQuiesce } from '../src/index.js';

let engine: QuiesceEngine;
beforeEach(() => {
  engine = createQuiesce();
});
afterEach(() => engine.close());

function start(typeDefs: string) {
  const schema = makeExecutableSchema({ typeDefs: [quiesceDirectives, typeDefs] });
  return () => createYoga({ schema, plugins: [useQuiesce(engine)], logging: false });
}

function startError(fn: () => unknown) {
  try {
    fn();
  } catch (error) {
    if (!isQuiesceError(error)) throw error;
    return error;
  }
  throw new Error('expected the plugin to refuse the schema at start');
}

const BASE = `
  input Inner { id: ID! tags: [String!] nested: Deep }
  input Deep { code: String }
  input Input { inner: Inner! list: [Inner!] name: String }
`;

describe('invalid directive use fails at plugin start, naming the field', () => {
  it.each([
    [
      'a policy directive on a non-root field',
      'type User { email: String @queueDuringReadOnly } type Query { me: User } type Mutation { x: Boolean }',
      'User.email',
      /User\.email: @queueDuringReadOnly means nothing on a field that is not a root Query or Mutation field/,
    ],
    [
      '@writes on a mutation field',
      'type Query { a: Int } type Mutation { save: Boolean @writes }',
      'Mutation.save',
      /Mutation\.save: @writes means nothing on a mutation field/,
    ],
    [
      'a policy on a query field without @writes',
      'type Query { report: String @dropDuringReadOnly } type Mutation { x: Boolean }',
      'Query.report',
      /Query\.report: @dropDuringReadOnly on a query field means nothing without @writes/,
    ],
    [
      'a policy on a subscription field',
      'type Query { a: Int } type Subscription { s: Int @allowDuringReadOnly }',
      'Subscription.s',
      /Subscription\.s: @allowDuringReadOnly means nothing on a subscription field/,
    ],
    [
      'two policies on one field',
      'type Query { a: Int } type Mutation { save: Boolean @allowDuringReadOnly @dropDuringReadOnly }',
      'Mutation.save',
      /one policy directive per field, found @allowDuringReadOnly and @dropDuringReadOnly/,
    ],
    [
      'a key naming no argument',
      `${BASE} type Query { a: Int } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "inptu.name") }`,
      'Mutation.save',
      /key "inptu\.name": the field has no argument "inptu" \(arguments: input\)/,
    ],
    [
      'a key through a list',
      `${BASE} type Query { a: Int } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "input.list.id") }`,
      'Mutation.save',
      /"input\.list" is a list; the key must be one value/,
    ],
    [
      'a key ending at an input object',
      `${BASE} type Query { a: Int } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "input.inner") }`,
      'Mutation.save',
      /key "input\.inner" ends at Inner; it must end at a scalar or enum/,
    ],
    [
      'a key naming an unknown input field',
      `${BASE} type Query { a: Int } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "input.inner.nested.kode") }`,
      'Mutation.save',
      /input Deep has no field "kode"/,
    ],
    [
      'a key ending at a list of scalars',
      `${BASE} type Query { a: Int } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "input.inner.tags") }`,
      'Mutation.save',
      /ends at \[String!\]; it must end at a scalar or enum/,
    ],
    [
      'an empty key segment',
      `${BASE} type Query { a: Int } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "input..name") }`,
      'Mutation.save',
      /key "input\.\.name" is not a dotted path of argument names/,
    ],
  ])('%s', (_, typeDefs, field, message) => {
    const error = startError(start(typeDefs));
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('reports every problem at once', () => {
    const error = startError(
      start('type Query { r: Int @dropDuringReadOnly } type Mutation { m: Boolean @writes }'),
    );
    expect(error.details?.problems).toEqual([
      'Query.r: @dropDuringReadOnly on a query field means nothing without @writes (add @writes if this query writes)',
      'Mutation.m: @writes means nothing on a mutation field (mutations are writes already)',
    ]);
  });

  it('checks code-first extensions the same way, including unknown arguments', () => {
    const schema = new GraphQLSchema({
      query: new GraphQLObjectType({ name: 'Query', fields: { a: { type: GraphQLBoolean } } }),
      mutation: new GraphQLObjectType({
        name: 'Mutation',
        fields: {
          save: { type: GraphQLBoolean, extensions: { directives: { dropDuringReadOnly: { key: 'x' } } } },
          keep: { type: GraphQLBoolean, extensions: { directives: { queueDuringReadOnly: { key: 7 } } } },
        },
      }),
    });
    const error = startError(() => createYoga({ schema, plugins: [useQuiesce(engine)], logging: false }));
    expect(error.details?.problems).toEqual([
      'Mutation.save: @dropDuringReadOnly has no argument "key"',
      'Mutation.keep: @queueDuringReadOnly(key:) must be a string, got 7',
    ]);
  });

  it('accepts valid use, including a key through nested input objects', () => {
    expect(() =>
      start(
        `${BASE} type Query { a: Int r: Int @writes @allowDuringReadOnly } type Mutation { save(input: Input!): Boolean @queueDuringReadOnly(key: "input.inner.nested.code") }`,
      )(),
    ).not.toThrow();
    expect(engine.inventory().map((e) => [e.name, e.policy, e.details?.key])).toEqual([
      ['mutation save', 'queue', 'input.inner.nested.code'],
      ['query r', 'allow', undefined],
    ]);
  });
});

describe('options', () => {
  it.each([
    [{ principal: 'ann' }, 'principal', /options\.principal must be a function/],
    [{ bypassHeader: 'x-ops' }, 'bypassHeader', /options\.bypassHeader is read from the engine/],
    [
      { requireIdempotencyKey: 'yes' },
      'requireIdempotencyKey',
      /options\.requireIdempotencyKey must be a boolean/,
    ],
  ])('rejects %j', (options, field, message) => {
    const error = startError(() => useQuiesce(engine, options as any));
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('rejects something that is not an engine', () => {
    const error = startError(() => useQuiesce({} as any));
    expect(error.field).toBe('engine');
  });
});
