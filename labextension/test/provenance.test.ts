/**
 * The provenance a kernel puts in an AI output's display metadata
 * (`kimi_jupyter/recording.py`) becomes the cell's `kimi_jupyter` metadata,
 * checked field by field.
 */
import { describe, expect, it } from 'vitest';

import { cellProvenance, provenanceOfOutput } from '../src/provenance';

const replayed = {
  model: 'kimi-k2.5',
  origin: 'replayed',
  recording: 'turns.kimi.jsonl',
  entry: '6a25af3854192e76',
  cost: 0.001709,
  currency: 'CNY'
};

describe('provenance', () => {
  it('lists the AI outputs of a cell in order and ignores the others', () => {
    const outputs = [
      { output_type: 'stream', name: 'stdout', text: 'hello' },
      { output_type: 'display_data', data: {}, metadata: { kimi_jupyter: replayed } },
      { output_type: 'display_data', data: {}, metadata: { 'image/png': { width: 3 } } },
      { output_type: 'display_data', data: {}, metadata: { kimi_jupyter: { ...replayed, origin: 'live' } } }
    ];
    expect(cellProvenance(outputs)).toEqual({
      ai_outputs: [replayed, { ...replayed, origin: 'live' }]
    });
  });

  it('says nothing for a cell without AI outputs', () => {
    expect(cellProvenance([])).toBeNull();
    expect(cellProvenance([{ output_type: 'stream', text: 'x' }])).toBeNull();
  });

  it('keeps only known fields of the right types, cut to a bound', () => {
    const hostile = {
      metadata: {
        kimi_jupyter: {
          origin: 'live',
          model: 'm'.repeat(5000),
          recording: { nested: true },
          cost: Infinity,
          currency: 7,
          entry: null,
          extra: '<img src=x onerror=alert(1)>'
        }
      }
    };
    expect(provenanceOfOutput(hostile)).toEqual({
      model: 'm'.repeat(200),
      origin: 'live',
      recording: null,
      entry: null,
      cost: null,
      currency: null
    });
    expect(provenanceOfOutput({ metadata: { kimi_jupyter: ['live'] } })).toBeNull();
    expect(provenanceOfOutput({ metadata: { kimi_jupyter: { model: 'x' } } })).toBeNull();
    expect(provenanceOfOutput(null)).toBeNull();
  });
});
