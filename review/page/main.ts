/// <reference lib="dom" />
import { api, ApiError, stagePath, adoptToken, type Waiting } from './api.js';
import { el, setWhere, show, zoom } from './dom.js';
import { ReviewView, type Reviewer } from './review-view.js';

/** The review page: `#/` lists what waits for people; `#/runs/RUN/stages/STAGE` opens one review or approval. */

const NAME_KEY = 'twinflow.reviewer';
const whoInput = () => document.getElementById('who') as HTMLInputElement;
let view: ReviewView | undefined;

/**
 * Signed in (a personal link): the server knows the name, the page only shows it. Local
 * mode: the name typed in the header, sent with each decision and recorded as unauthenticated.
 */
async function reviewer(): Promise<Reviewer> {
  const answer = await api<{ user: string; signedIn: boolean }>('/api/me');
  if (answer.signedIn) {
    whoInput().replaceWith(el('strong', { text: answer.user, attrs: { id: 'signed-in' } }));
    return { name: () => answer.user, by: () => ({}) };
  }
  const input = whoInput();
  input.title = 'nobody signs in on this page (local mode): decisions record this name as typed, marked unauthenticated';
  input.value = localStorage.getItem(NAME_KEY) ?? answer.user;
  input.addEventListener('change', () => {
    localStorage.setItem(NAME_KEY, input.value.trim());
    void route();
  });
  const name = () => input.value.trim() || 'anonymous';
  return { name, by: () => ({ by: name() }) };
}

let me: Reviewer;

async function init(): Promise<void> {
  adoptToken();
  try {
    me = await reviewer();
  } catch (err) {
    return showError(err);
  }
  document.getElementById('zoom')!.addEventListener('click', () => zoom(undefined));
  window.addEventListener('hashchange', () => void route());
  await route();
}

async function route(): Promise<void> {
  document.onkeydown = null;
  window.onbeforeunload = null;
  window.onpagehide = null;
  window.onpageshow = null;
  view?.leave();
  view = undefined;
  const match = location.hash.match(/^#\/runs\/([^/]+)\/stages\/([^/]+)$/);
  try {
    if (match) await openStage(decodeURIComponent(match[1]!), decodeURIComponent(match[2]!));
    else await listWaiting();
  } catch (err) {
    showError(err);
  }
}

function showError(err: unknown): void {
  const signIn = err instanceof ApiError && err.status === 401;
  show(el('p', { className: 'error', text: signIn ? `${err.message}. A link for another server, or from before it restarted, does not work here.` : (err as Error).message }),
    ...(signIn ? [] : [el('a', { text: 'back to the list', attrs: { href: '#/' } })]));
}

async function listWaiting(): Promise<void> {
  setWhere('');
  const { waiting } = await api<{ waiting: Waiting[] }>('/api/waiting');
  if (!waiting.length) return show(el('p', { className: 'muted', text: 'Nothing waits for people right now.' }));
  const list = el('ul', { className: 'waiting' });
  for (const w of waiting) {
    const href = `#/runs/${encodeURIComponent(w.runId)}/stages/${encodeURIComponent(w.stage)}`;
    const what = w.kind === 'review' ? `review of ${w.review?.total ?? '?'} items${w.review?.title ? `: ${w.review.title}` : ''}` : `approval${w.message ? `: ${w.message}` : ''}`;
    list.append(el('li', {}, el('a', { text: `${w.stage}`, attrs: { href } }), el('span', { className: 'muted', text: ` ${what} · run ${w.runId} (${w.pipeline})` })));
  }
  show(el('h2', { text: 'Waiting for people' }), list);
}

async function openStage(run: string, stage: string): Promise<void> {
  setWhere(`${run} › ${stage}`);
  const info = await api<ApprovalInfo & { kind: string }>(stagePath(run, stage));
  if (info.kind === 'review') {
    view = new ReviewView(run, stage, me);
    return view.start();
  }
  showApproval(run, stage, info);
}

interface ApprovalInfo { state?: string; message?: string | null; approvers?: string[]; needs?: string[] }

/** What an approver may want to read first: the logs of the stages the gate waits for. */
function logViewers(run: string, needs: string[]): HTMLElement[] {
  return needs.map((need) => {
    const pre = el('pre', { className: 'log', attrs: { hidden: '' } });
    const button = el('button', { className: 'log-toggle', text: `log of ${need}` });
    button.addEventListener('click', () => void (async () => {
      if (!pre.hidden) return void (pre.hidden = true);
      try {
        const r = await api<{ log: string | null; truncated: boolean }>(`${stagePath(run, need)}/log`);
        pre.textContent = r.log === null ? `${need} wrote no log (only commands and tools do)` : `${r.truncated ? '… (the start is cut)\n' : ''}${r.log}`;
      } catch (err) {
        pre.textContent = `error: ${(err as Error).message}`;
      }
      pre.hidden = false;
    })());
    return el('div', { className: 'log-view' }, button, pre);
  });
}

function showApproval(run: string, stage: string, info: ApprovalInfo): void {
  if (info.state !== 'waiting') return show(el('p', { text: `${stage} is ${info.state}; nothing to decide.` }), el('a', { text: 'back to the list', attrs: { href: '#/' } }));
  const note = el('textarea', { attrs: { id: 'note', rows: '3', placeholder: 'a note (required to reject)' } });
  const status = el('p', { className: 'status', attrs: { role: 'status' } });
  const send = async (action: 'approve' | 'reject') => {
    if (action === 'reject' && !note.value.trim()) return void (status.textContent = 'a rejection needs a note saying why');
    try {
      const r = await api<{ state: string }>(`${stagePath(run, stage)}/${action}`, { ...me.by(), note: note.value });
      status.textContent = `${action === 'approve' ? 'approved' : 'rejected'}; the stage is now ${r.state}`;
    } catch (err) {
      status.textContent = `error: ${(err as Error).message}`;
    }
  };
  const approve = el('button', { className: 'choice c0', text: 'approve' });
  const reject = el('button', { className: 'choice c1', text: 'reject' });
  approve.addEventListener('click', () => void send('approve'));
  reject.addEventListener('click', () => void send('reject'));
  show(el('h2', { text: `approval: ${stage}` }), el('p', { className: 'question', text: info.message ?? 'Approve to let the run go on.' }),
    ...(info.approvers?.length ? [el('p', { className: 'muted', text: `approvers: ${info.approvers.join(', ')}` })] : []),
    ...logViewers(run, info.needs ?? []), note, el('div', { className: 'choices' }, approve, reject), status);
}

void init();
