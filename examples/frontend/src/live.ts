// Subscriptions over WebSocket, protocol graphql-transport-ws (docs/subscriptions.md), with
// the browser's WebSocket and nothing else. In an app, the `graphql-ws` package's
// createClient (or Apollo's GraphQLWsLink on top of it) does the same and reconnects.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { ApiError } from './client';

export interface LiveOptions {
  /** e.g. ws://127.0.0.1:8000/graphql (the same path as HTTP) */
  url: string;
  /** The bearer token, sent in connection_init; the server closes (4403) when it expires. */
  token: () => string | null;
}

export interface Handlers<TData> {
  next: (data: TData) => void;
  /** errors of one event (FORBIDDEN: a role was revoked, the stream ends) */
  error?: (errors: ApiError[]) => void;
  /** the socket closed: 4401/4403 credential, 4429 too many connections, 4408, 1009 */
  closed?: (code: number, reason: string) => void;
}

type ServerMessage =
  | { type: 'connection_ack' | 'pong' }
  | { type: 'ping' }
  | { type: 'next'; id: string; payload: { data?: unknown; errors?: ApiError[] } }
  | { type: 'error'; id: string; payload: ApiError[] }
  | { type: 'complete'; id: string };

/** Subscribe on a socket of its own; returns the function that ends the subscription. */
export function subscribe<TData, TVariables>(
  options: LiveOptions,
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
  handlers: Handlers<TData>,
): () => void {
  const socket = new WebSocket(options.url, 'graphql-transport-ws');
  const id = '1';
  const send = (message: object) => socket.send(JSON.stringify(message));
  socket.onopen = () => {
    const token = options.token();
    send({ type: 'connection_init', payload: token ? { Authorization: `Bearer ${token}` } : {} });
  };
  socket.onmessage = (event: MessageEvent<string>) => {
    const message = JSON.parse(event.data) as ServerMessage;
    switch (message.type) {
      case 'connection_ack':
        send({ type: 'subscribe', id, payload: { query: print(document), variables } });
        break;
      case 'ping':
        send({ type: 'pong' });
        break;
      case 'next':
        if (message.payload.errors?.length) handlers.error?.(message.payload.errors);
        if (message.payload.data) handlers.next(message.payload.data as TData);
        break;
      case 'error':
        handlers.error?.(message.payload);
        break;
      case 'complete':
        socket.close(1000);
        break;
    }
  };
  socket.onclose = (event: CloseEvent) => handlers.closed?.(event.code, event.reason);
  return () => {
    if (socket.readyState === WebSocket.OPEN) send({ type: 'complete', id });
    socket.close(1000);
  };
}
