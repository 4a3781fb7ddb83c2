/**
 * A line of at most `max` characters: a longer one is cut at the last space that fits (never mid-word), without
 * trailing punctuation, and ends with an ellipsis. A single word longer than `max` is cut where the cap falls.
 */
export function cutBetweenWords (line: string, max: number): string {
  if (line.length <= max) return line
  const space = line.lastIndexOf(' ', max - 1)
  const head = space > 0 ? line.slice(0, space) : line.slice(0, max - 1)
  return `${head.replace(/[\s,;:.]+$/, '')}…`
}
