/**
 * The sidebar's `TurnState` folds the golden turns of `tests/golden/turns/`
 * into exactly the snapshot `Response.feed` gives in Python
 * (`tests/test_protocol_golden.py` checks the Python side on the same files).
 */
import { readdirSync, readFileSync } from 'fs';
import { join } from 'path';
import { describe, expect, it } from 'vitest';

import { usageLine } from '../src/format';
import { IResponseSummary, KimiEvent } from '../src/protocol';
import { addUsage, Phase, TurnState, usageOf } from '../src/turn';

const GOLDEN = join(__dirname, '..', '..', 'tests', 'golden', 'turns');

interface IGolden {
  description: string;
  events: KimiEvent[];
  phases: Phase[];
  expect: Omit<IResponseSummary, 'model'> & { interrupted: boolean; failed: boolean };
}

function snapshot(state: TurnState): Record<string, unknown> {
  const { model: _model, ...summary } = state.summary();
  return { ...summary, interrupted: state.interrupted, failed: state.failed };
}

const files = readdirSync(GOLDEN).filter(name => name.endsWith('.json')).sort();

describe('golden turns', () => {
  it('are all there', () => {
    expect(files.length).toBeGreaterThanOrEqual(7);
  });

  for (const file of files) {
    const golden = JSON.parse(readFileSync(join(GOLDEN, file), 'utf-8')) as IGolden;

    describe(file.replace(/\.json$/, ''), () => {
      it('folds the events into the expected snapshot', () => {
        const state = new TurnState();
        for (const event of golden.events) {
          state.feed(event);
        }
        expect(snapshot(state)).toEqual(golden.expect);
      });

      it('shows the expected phase after each event', () => {
        const state = new TurnState();
        const phases = golden.events.map(event => {
          state.feed(event);
          return state.phase;
        });
        expect(phases).toEqual(golden.phases);
      });

      it('ends in the same state from the kernel summary', () => {
        const { interrupted: _i, failed: _f, ...summary } = golden.expect;
        const live = new TurnState();
        golden.events.forEach(event => live.feed(event));
        const saved = TurnState.fromSummary({ model: null, ...summary });
        expect(snapshot(saved)).toEqual(golden.expect);
        live.finish({ model: null, ...summary });
        expect(snapshot(live)).toEqual(golden.expect);
        expect(saved.phase).toEqual(live.phase);
      });
    });
  }
});

describe('usage', () => {
  const cny = usageOf({ type: 'Usage', prompt: 1, completion: 1, total: 2, cost: 0.5, currency: 'CNY' });
  const usd = usageOf({ type: 'Usage', prompt: 1, completion: 1, total: 2, cost: 0.25, currency: 'USD' });

  it('never sums costs across currencies, even after a third request', () => {
    const state = new TurnState();
    for (const usage of [cny, usd, cny]) {
      state.feed({ type: 'Usage', ...usage });
    }
    expect(state.usage.cost).toBeNull();
    expect(state.costs).toEqual({ CNY: 1, USD: 0.25 });
    expect(addUsage(cny, usd).cost).toBeNull();
    expect(addUsage(cny, cny).cost).toBe(1);
  });

  it('shows one cost per currency when there is no single one', () => {
    const state = new TurnState();
    state.feed({ type: 'Usage', ...cny });
    state.feed({ type: 'Usage', ...usd });
    expect(usageLine(state.usage, null, state.costs)).toBe(
      'usage: prompt 2, completion 2, total 4 tokens, cost ¥0.5 + $0.25'
    );
    expect(usageLine(cny, null, { CNY: 0.5 })).toBe(
      'usage: prompt 1, completion 1, total 2 tokens, cost ¥0.5'
    );
  });
});

describe('interrupts', () => {
  it('are told by the error kind, not by the wording', () => {
    const worded = new TurnState();
    worded.feed({ type: 'Failed', error: 'Interrupted by the proxy (502).', kind: 'KimiServerError' });
    expect(worded.phase).toBe('failed');
    expect(worded.interrupted).toBe(false);
    const stopped = new TurnState();
    stopped.feed({ type: 'Failed', error: 'Stopped.', kind: 'Interrupted', partial: false });
    expect(stopped.phase).toBe('interrupted');
    expect(stopped.interrupted).toBe(true);
  });
});
