// What the screens of a front-end ask for, each through one typed document of
// src/operations/. A renamed field or a changed type in the API's schema breaks
// `npm run codegen` or `npm run typecheck` here, in CI, before it breaks a user.
import type { Request } from './client';
import { subscribe } from './live';
import type { LiveOptions } from './live';
import {
  CaseDetailDocument,
  CaseListDocument,
  CheckInShiftDocument,
  BoardLiveDocument,
  InboxDocument,
  InboxLiveDocument,
  MarkNotificationReadDocument,
  RegisterCaseDocument,
  RosterDocument,
  WarningBoardDocument,
} from './gql/graphql';
import type {
  CaseDetailQuery,
  CaseFilter,
  CaseListItemFragment,
  CaseListQuery,
  BoardLiveSubscription,
  InboxLiveSubscription,
  InboxQuery,
  RegisterCaseInput,
  RosterQuery,
  WarningBoardQuery,
} from './gql/graphql';

/** The case list, page by page (forward: `first`/`after` with the page's endCursor). */
export async function* caseListPages(
  request: Request,
  filter: CaseFilter,
  pageSize = 50,
): AsyncGenerator<{ totalCount: number; cases: CaseListItemFragment[] }> {
  let after: string | null = null;
  do {
    const page: CaseListQuery = await request(CaseListDocument, { filter, first: pageSize, after });
    const { cases } = page;
    yield { totalCount: cases.totalCount, cases: cases.edges.map((edge) => edge.node) };
    after = cases.pageInfo.hasNextPage ? (cases.pageInfo.endCursor ?? null) : null;
  } while (after !== null);
}

/** The same list from its end (the oldest cases first come last): `last`/`before` with
 * the page's startCursor, each page still in the list's order (newest first). */
export async function* caseListPagesBackward(
  request: Request,
  filter: CaseFilter,
  pageSize = 50,
): AsyncGenerator<{ totalCount: number; cases: CaseListItemFragment[] }> {
  let before: string | null = null;
  do {
    const page: CaseListQuery = await request(CaseListDocument, { filter, last: pageSize, before });
    const { cases } = page;
    yield { totalCount: cases.totalCount, cases: cases.edges.map((edge) => edge.node) };
    before = cases.pageInfo.hasPreviousPage ? (cases.pageInfo.startCursor ?? null) : null;
  } while (before !== null);
}

/** This month's red cases of a county received by letter, for instance. */
export function redLettersOf(unitPath: string, month: string): CaseFilter {
  return {
    unitPath,
    warningColor: 'RED',
    receivedFrom: `${month}-01`,
    search: null,
  };
}

export type CaseDetail = NonNullable<CaseDetailQuery['case']>;

/** A case's page: the case, its open deadlines (with the rule behind each), its trail.
 * `case` is nullable: a miss is `null` with a NOT_FOUND error (the client throws it). */
export async function caseDetail(request: Request, id: string) {
  const { case: found } = await request(CaseDetailDocument, { id });
  if (found == null) {
    return null; // absent, or not the caller's to see: the two are indistinguishable
  }
  const open = found.deadlines.filter((deadline) => deadline.status === 'OPEN');
  const lastEvent = found.events.at(-1);
  return { case: found, open, lastStatusChange: lastEvent?.at ?? found.receivedAt };
}

/** Intake; `clientKey` makes a retry after a network failure return the same case. */
export async function registerCase(
  request: Request,
  input: Omit<RegisterCaseInput, 'clientKey'>,
  clientKey: string = crypto.randomUUID(),
) {
  const { registerCase: created } = await request(RegisterCaseDocument, {
    input: { ...input, clientKey },
  });
  return created;
}

export type Board = WarningBoardQuery['warningBoard'];

/** Counts per colour and the first page of red cases. */
export async function warningBoard(request: Request, unitPath?: string): Promise<Board> {
  const { warningBoard: board } = await request(WarningBoardDocument, { unitPath, first: 20 });
  return board;
}

export type Message = InboxQuery['notificationsConnection']['edges'][number]['node'];

/** The unread messages, newest first; opening one marks it read. `since`: only those that
 * arrived after the page whose `newest` cursor it is (a poll asks for what is new). */
export async function unreadMessages(
  request: Request,
  since: string | null = null,
): Promise<{ messages: Message[]; newest: string | null }> {
  const { notificationsConnection: inbox } = await request(InboxDocument, {
    unreadOnly: true,
    first: 50,
    before: since,
  });
  return {
    messages: inbox.edges.map((edge) => edge.node),
    newest: inbox.pageInfo.startCursor ?? since,
  };
}

/** Each new message as it reaches the inbox (while connected; on reconnecting, ask
 * `unreadMessages(request, newest)` for what arrived meanwhile). Returns the stop function. */
export function onMessage(
  live: LiveOptions,
  handle: (message: InboxLiveSubscription['notificationReceived']) => void,
): () => void {
  return subscribe(live, InboxLiveDocument, {}, {
    next: (data) => handle(data.notificationReceived),
  });
}

/** Each change of a case of the board (status, colour, holder) under `unitPath`. */
export function onBoardChange(
  live: LiveOptions,
  handle: (change: BoardLiveSubscription['caseUpdated']) => void,
  unitPath?: string,
): () => void {
  return subscribe(live, BoardLiveDocument, { unitPath }, {
    next: (data) => handle(data.caseUpdated),
  });
}

export async function markRead(request: Request, message: Message): Promise<string | null> {
  const { markNotificationRead } = await request(MarkNotificationReadDocument, {
    input: { id: message.id },
  });
  return markNotificationRead.readAt ?? null;
}

export type Shift = RosterQuery['dutyShifts'][number];

/** The duty roster of a period (dates are YYYY-MM-DD, the city's calendar). */
export async function roster(request: Request, from: string, to: string, unitPath?: string) {
  const { dutyShifts } = await request(RosterDocument, { from, to, unitPath });
  return dutyShifts;
}

/** The duty leader arrives at the reception hall. */
export async function checkIn(request: Request, shift: Shift, location?: string) {
  const { checkInShift } = await request(CheckInShiftDocument, {
    input: { shiftId: shift.id, location },
  });
  return checkInShift.status === 'CHECKED_IN';
}
