import type { Note } from './database.js';

export interface NoteSearch {
  q: string;
  hits: Note[];
  /**
   * The answer's drift from the question, 0 (the best note holds every word of the query) to 1 (no
   * note holds any): a toy stand-in for the semantic drift score (ΔS) a retrieval or RAG service
   * reports with each answer, so the demo has a read-quality signal that can drift.
   */
  deltaS: number;
}

const words = (text: string) => new Set(text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []);

/** Notes holding words of `q`, best first, and the answer's drift score. Pure. */
export function searchNotes(notes: readonly Note[], q: string): NoteSearch {
  const query = words(q);
  if (query.size === 0) return { q, hits: [], deltaS: 1 };
  const scored = notes
    .map((note) => {
      const text = words(note.text);
      let shared = 0;
      for (const w of query) if (text.has(w)) shared++;
      return { note, coverage: shared / query.size };
    })
    .filter((s) => s.coverage > 0)
    .sort((a, b) => b.coverage - a.coverage);
  const best = scored[0]?.coverage ?? 0;
  return { q, hits: scored.slice(0, 20).map((s) => s.note), deltaS: Math.round((1 - best) * 1000) / 1000 };
}
