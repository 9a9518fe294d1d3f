/// <reference lib="dom" />
import { api, ApiError, imageUrl, sendOnLeave, stagePath, type PageItem, type Progress } from './api.js';
import { el, show, zoom } from './dom.js';

interface Decided {
  decisions: Array<{ id: string; choice: string }>;
}

interface DecideResult {
  applied: number;
  duplicates: number;
  undone: number;
  skipped: Array<{ id: string; reason: string }>;
  progress: Progress;
}

const CLAIM = 12;

/** Who decides on this page: `name` to show, `by` to send (nothing when the token says who). */
export interface Reviewer {
  name(): string;
  by(): { by?: string };
}

/**
 * One review stage on the page: items claimed a dozen at a time (the review workflow
 * holds them for this reviewer), each decision sent the moment a key is pressed, the
 * reviewer's own latest decisions kept as an undo stack that survives a reload.
 */
export class ReviewView {
  private queue: PageItem[] = [];
  private index = 0;
  private undoStack: Array<{ id: string; choice: string }> = [];
  private progress!: Progress;
  private status = '';
  private done = false;
  /** Decisions on their way, by item id: undo waits for them, a reload is warned about them. */
  private readonly saving = new Map<string, Promise<void>>();
  /**
   * Items decided on this page (not undone). A claim answered before a decision arrived
   * would hand its item back; it is never shown again.
   */
  private readonly decidedHere = new Set<string>();
  private claims = 0;
  private claimsOpen = 0;
  private claimsAnswered = 0;
  private requests = 0;
  private progressFrom = 0;
  private undoing = false;
  private left = false;
  private readonly base: string;

  constructor(private readonly run: string, private readonly stage: string, private readonly who: Reviewer) {
    this.base = stagePath(run, stage);
  }

  async start(): Promise<void> {
    this.progress = (await api<{ progress: Progress }>(this.base)).progress;
    const by = this.who.by().by;
    this.undoStack = (await api<Decided>(`${this.base}/recent${by === undefined ? '' : `?by=${encodeURIComponent(by)}`}`)).decisions;
    await this.claim();
    document.onkeydown = (e) => this.onKey(e);
    window.onbeforeunload = (e) => (this.saving.size ? e.preventDefault() : undefined);
    window.onpagehide = () => this.leave();
    // Back from the browser's page cache: the items were handed back when it left.
    window.onpageshow = (e) => {
      if (!e.persisted) return;
      this.left = false;
      void this.claim();
    };
  }

  /**
   * Hands the items held here back at once (the page closes, or the reviewer goes to
   * another stage), so others get them now instead of when the lease lapses.
   */
  leave(): void {
    const ids = this.queue.map((item) => item.id);
    this.left = true;
    this.queue = [];
    if (!this.done) this.handBack(ids);
  }

  private handBack(ids: string[]): void {
    if (ids.length) sendOnLeave(`${this.base}/release`, { ...this.who.by(), ids });
  }

  /** The items held for this reviewer; an answer older than one already shown is dropped. */
  private async claim(first?: string): Promise<void> {
    if (this.left) return;
    const seq = ++this.claims;
    this.claimsOpen++;
    try {
      const claimed = await this.send<{ items: PageItem[]; limited?: string }>('claim', { count: CLAIM });
      // Answered after the page left: these are held for nobody who is looking; hand them back.
      if (this.left) return this.handBack(claimed.items.map((item) => item.id));
      if (seq < this.claimsAnswered) return;
      this.claimsAnswered = seq;
      if (claimed.limited) this.status = claimed.limited;
      claimed.items.slice(0, 4).forEach((item) => this.preload(item));
      const current = this.queue[this.index]?.id;
      this.queue = claimed.items.filter((item) => !this.decidedHere.has(item.id));
      const keep = this.queue.findIndex((item) => item.id === (first ?? current));
      if (first && keep > 0) this.queue.unshift(...this.queue.splice(keep, 1));
      this.index = first ? 0 : Math.max(0, keep);
    } catch (err) {
      this.fail(err);
    } finally {
      this.claimsOpen--;
    }
    this.render();
  }

  private onKey(e: KeyboardEvent): void {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.key === 'Escape') return zoom(undefined);
    if (this.done) return;
    const choice = this.choiceForKey(e.key);
    if (choice) this.decide(choice);
    else if (e.key === 'u') void this.undo();
    else if (e.key === 'ArrowRight') this.move(1);
    else if (e.key === 'ArrowLeft') this.move(-1);
    else return;
    e.preventDefault();
  }

  /** y and n: the first two choices; digits: the choice that is that digit, else the Nth choice. */
  private choiceForKey(key: string): string | undefined {
    const { choices } = this.progress;
    if (key === 'y') return choices[0];
    if (key === 'n') return choices[1];
    if (!/^[0-9]$/.test(key)) return undefined;
    return choices.includes(key) ? key : choices[Number(key) - 1];
  }

  private move(step: number): void {
    if (!this.queue.length) return;
    this.index = (this.index + step + this.queue.length) % this.queue.length;
    this.render();
  }

  /** A POST for this reviewer; the progress it answers with is shown unless a later request's already is. */
  private async send<T>(path: string, body: Record<string, unknown>): Promise<T & { progress: Progress }> {
    const seq = ++this.requests;
    const result = await api<T & { progress: Progress }>(`${this.base}/${path}`, { ...this.who.by(), ...body });
    if (seq > this.progressFrom) {
      this.progressFrom = seq;
      this.progress = result.progress;
    }
    if (result.progress.decided >= result.progress.total) this.finish();
    return result;
  }

  /** Sends the decision on the item on screen at once and shows the next one without waiting. */
  decide(choice: string): void {
    const item = this.queue[this.index];
    if (!item) return;
    this.queue.splice(this.index, 1);
    if (this.index >= this.queue.length) this.index = 0;
    const note = (document.getElementById('item-note') as HTMLInputElement | null)?.value.trim();
    this.decidedHere.add(item.id);
    const saving = this.save(item, choice, note).finally(() => {
      this.saving.delete(item.id);
      this.render();
    });
    this.saving.set(item.id, saving);
    const elsewhere = this.progress.total - this.progress.decided - this.queue.length - this.saving.size;
    if (this.queue.length < 4 && !this.claimsOpen && elsewhere > 0) void this.claim();
    this.render();
  }

  private async save(item: PageItem, choice: string, note: string | undefined): Promise<void> {
    try {
      const result = await this.send<DecideResult>('decisions', { decisions: [{ id: item.id, choice, ...(note ? { note } : {}) }] });
      if (result.skipped.length) this.status = `not recorded: ${result.skipped[0]!.reason}`;
      else {
        this.undoStack = [...this.undoStack.filter((d) => d.id !== item.id), { id: item.id, choice }];
        this.status = `saved: ${item.id} → ${choice}`;
      }
    } catch (err) {
      this.decidedHere.delete(item.id);
      this.queue.splice(this.index, 0, item);
      this.fail(err);
    }
  }

  /** Undoes this reviewer's latest decision once every decision on its way has arrived. */
  async undo(): Promise<void> {
    if (this.undoing) return;
    this.undoing = true;
    try {
      await Promise.all(this.saving.values());
      const last = this.undoStack[this.undoStack.length - 1];
      if (!last) {
        this.status = 'nothing of yours to undo';
        return this.render();
      }
      this.status = `undoing ${last.id}…`;
      this.render();
      await this.send<DecideResult>('decisions', { decisions: [{ id: last.id, undo: true }] });
      this.undoStack.pop();
      this.decidedHere.delete(last.id);
      this.status = `undone: ${last.id} (was ${last.choice})`;
      await this.claim(last.id);
    } catch (err) {
      this.fail(err);
      this.render();
    } finally {
      this.undoing = false;
    }
  }

  private fail(err: unknown): void {
    if (err instanceof ApiError && err.status === 409) return this.finish(err.message);
    this.status = `error: ${(err as Error).message}`;
  }

  /** The review is over: every item decided, or `closed` says why it closed (a deadline, the run ended). */
  private finish(closed?: string): void {
    if (this.left) return;
    this.done = true;
    this.status = '';
    show(el('section', { className: 'done' },
      el('h2', { text: closed ? 'This review has closed' : 'All items are decided' }),
      el('p', { text: closed ?? `${this.progress?.total ?? ''} items of ${this.stage} have their decisions; the run goes on.` }),
      el('a', { text: 'back to the list', attrs: { href: '#/' } })));
  }

  private render(): void {
    if (this.done || this.left) return;
    const { decided, total, title, byReviewer } = this.progress;
    const mine = byReviewer[this.who.name()] ?? 0;
    const head = el('div', { className: 'progress' },
      el('h2', { text: title ?? `review ${this.stage}` }),
      el('span', { className: 'count', text: `${decided} of ${total} decided · ${total - decided} left · ${mine} by you` }),
      el('span', { className: 'status', text: this.saving.size ? `saving ${this.saving.size}…` : this.status, attrs: { role: 'status' } }));
    const item = this.queue[this.index];
    if (!item && this.claimsOpen) return show(head, el('p', { className: 'muted', text: 'loading more items…' }));
    if (!item) {
      show(head, el('p', { className: 'muted', text: 'Nothing for you right now: the remaining items are held by other reviewers or already have your decision.' }),
        el('button', { text: 'look again' }));
      document.querySelector('main button')?.addEventListener('click', () => void this.claim());
      return;
    }
    show(head, this.itemView(item), this.help());
  }

  private itemView(item: PageItem): HTMLElement {
    const question = item.question ?? this.progress.question ?? 'Do these images show the same object instance?';
    const images = el('div', { className: `images n${Math.min(item.images.length, 4)}` });
    for (const img of item.images) {
      const pic = el('img', { attrs: { alt: `${img.role ?? 'image'} of ${img.instance_id ?? 'an instance'}` } });
      const src = imageUrl(`${this.base}/images/${img.sha256}`);
      src.then((url) => (pic.src = url), (err: Error) => (pic.alt = `image not shown: ${err.message}`));
      pic.addEventListener('click', () => void src.then(zoom, () => undefined));
      images.append(el('figure', {}, pic, el('figcaption', { text: [img.role, img.instance_id].filter(Boolean).join(' · ') })));
    }
    const meta = el('dl', { className: 'meta' });
    const rows: Array<[string, unknown]> = [['item', item.id], ...(item.group ? [['group', item.group] as [string, unknown]] : []), ...(item.score !== undefined ? [['score', item.score.toFixed(4)] as [string, unknown]] : []), ...Object.entries(item.metadata ?? {})];
    for (const [k, v] of rows) meta.append(el('dt', { text: k }), el('dd', { text: typeof v === 'string' ? v : JSON.stringify(v) }));
    const buttons = el('div', { className: 'choices' });
    this.progress.choices.forEach((choice, i) => {
      const key = i === 0 ? 'y' : i === 1 ? 'n' : String(i + 1);
      // Counts are not good or bad: only named choices get the accept/reject colours.
      const digit = /^[0-9]$/.test(choice);
      const button = el('button', { className: digit ? 'choice' : `choice c${i}`, text: `${choice} `, attrs: { 'data-choice': choice } }, el('kbd', { text: digit ? choice : key }));
      button.addEventListener('click', () => this.decide(choice));
      buttons.append(button);
    });
    const note = el('input', { className: 'note', attrs: { id: 'item-note', maxlength: '2000', placeholder: 'note (optional; kept with your decision; Enter saves it, then press a key)' } });
    note.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === 'Escape') note.blur();
    });
    return el('article', { className: 'item', attrs: { 'data-item': item.id } },
      el('p', { className: 'question', text: question }), images, buttons, note, meta,
      el('p', { className: 'muted', text: `item ${this.index + 1} of ${this.queue.length} held for you` }));
  }

  /** Fetches an item's images ahead of time: the next item shows at once. */
  private preload(item: PageItem): void {
    for (const img of item.images) imageUrl(`${this.base}/images/${img.sha256}`).catch(() => undefined);
  }

  private help(): HTMLElement {
    return el('p', { className: 'help', text: 'keys: y / n for the first two choices, digits for any choice (a count by its own digit), u undoes your last decision, ← → move between items, click an image to zoom, Esc closes it' });
  }
}
