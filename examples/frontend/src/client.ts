// A small GraphQL client on fetch, for the typed documents of src/gql/ (npm run codegen).
// Any client that takes a TypedDocumentNode works the same (Apollo Client, urql, …);
// this one shows the two things the API adds: persisted queries and the
// application/graphql-response+json media type (errors arrive as GraphQL errors, with
// the HTTP status of the spec: 200 when there is data, 4xx for a request error).
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';

/** An error as the API sends it: extensions.code is one of the contract's codes. */
export interface ApiError {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: { code?: string; field?: string; reason?: string; [key: string]: unknown };
}

export class GraphQLRequestError<TData> extends Error {
  constructor(
    readonly errors: ApiError[],
    readonly status: number,
    readonly data: TData | null | undefined,
  ) {
    super(errors.map((e) => `${e.extensions?.code ?? 'ERROR'}: ${e.message}`).join('; '));
  }

  /** The contract's code of the first error (UNAUTHENTICATED, NOT_FOUND, CONFLICT, …). */
  get code(): string | undefined {
    return this.errors[0]?.extensions?.code;
  }
}

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8000/graphql */
  url: string;
  /** The bearer token of the signed-in official (SSO; locally `xinfang token USER`). */
  token: () => string | null;
}

interface Reply<TData> {
  status: number;
  body: { data?: TData | null; errors?: ApiError[] };
}

const ACCEPT = 'application/graphql-response+json, application/json;q=0.9';

export type Request = <TData, TVariables>(
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
) => Promise<TData>;

/** `request(document, variables)`: the hash first (persisted query), the text if unknown. */
export function createClient(options: ClientOptions): Request {
  async function post<TData>(payload: object): Promise<Reply<TData>> {
    const token = options.token();
    const response = await fetch(options.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: ACCEPT,
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(payload),
    });
    return { status: response.status, body: (await response.json()) as Reply<TData>['body'] };
  }

  return async function request<TData, TVariables>(
    document: TypedDocumentNode<TData, TVariables>,
    variables: TVariables,
  ): Promise<TData> {
    const hash = (document as { __meta__?: { hash?: string } }).__meta__?.hash;
    let reply: Reply<TData> | undefined;
    if (hash) {
      const sha256Hash = hash.replace(/^sha256:/, '');
      reply = await post<TData>({ extensions: { persistedQuery: { version: 1, sha256Hash } }, variables });
    }
    if (!reply || reply.body.errors?.some((e) => e.message === 'PersistedQueryNotFound')) {
      reply = await post<TData>({ query: print(document), variables }); // not loaded yet
    }
    const { status, body } = reply;
    if (body.errors?.length || body.data == null) {
      throw new GraphQLRequestError(body.errors ?? [], status, body.data);
    }
    return body.data;
  };
}
