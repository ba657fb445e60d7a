import type { QuiesceEngine } from '@quiesce/core';
import { quiesceDirectives, useQuiesce } from '@quiesce/graphql-yoga';
import { GraphQLError } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import type { NotesRepository } from './database.js';

const typeDefs = /* GraphQL */ `
  type Note {
    id: ID!
    text: String!
    pinned: Boolean!
    views: Int!
    createdAt: String!
    source: String!
  }
  input AddNoteInput {
    text: String!
    "Your idempotency key: the same requestId is the same note, even when it is queued and replayed."
    requestId: String
  }
  type Query {
    notes: [Note!]!
    note(id: ID!): Note
  }
  type Mutation {
    "Kept as a write intent during a window and applied after it."
    addNote(input: AddNoteInput!): Note @queueDuringReadOnly(key: "input.requestId")
    "Refused during a window (the default for a mutation)."
    deleteNote(id: ID!): Boolean!
    "Non-critical: acknowledged and discarded during a window."
    viewNote(id: ID!): Boolean @dropDuringReadOnly
  }
`;

/** A note id from a GraphQL `ID`: a positive integer, else a validation error naming the argument. */
function noteId(raw: string): number {
  const id = /^[1-9]\d{0,14}$/.test(String(raw)) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(id)) {
    throw new GraphQLError(`id: must be a note id (a positive integer), got ${JSON.stringify(raw)}`, {
      extensions: { code: 'BAD_USER_INPUT', field: 'id' },
    });
  }
  return id;
}

/** The GraphQL face of the board on Yoga, with the quiesce plugin and policy directives. */
export function createGraphqlNotes(engine: QuiesceEngine, notes: NotesRepository) {
  const schema = createSchema({
    typeDefs: [quiesceDirectives, typeDefs],
    resolvers: {
      Query: {
        notes: () => notes.list(),
        note: (_: unknown, a: { id: string }) => notes.get(noteId(a.id)),
      },
      Mutation: {
        addNote: (_: unknown, a: { input: { text: string; requestId?: string } }) =>
          notes.create(a.input.text, 'graphql', a.input.requestId),
        deleteNote: (_: unknown, a: { id: string }) => notes.remove(noteId(a.id)),
        viewNote: async (_: unknown, a: { id: string }) => {
          await notes.view(noteId(a.id));
          return true;
        },
      },
    },
  });
  // Replays a queued addNote with the arguments it was given; the request key makes it apply once.
  engine.handle('Mutation.addNote', async (args: { input: { text: string } }, ctx) => {
    await notes.create(args.input.text, 'replay', ctx.idempotencyKey);
  });
  return createYoga({ schema, plugins: [useQuiesce(engine)], graphqlEndpoint: '/graphql', logging: false });
}
