import t from 'tap'
import { cutBetweenWords } from '../../src/cli/text.js'
import { quotable } from '../../src/cli/app-checks.js'

t.test('cutBetweenWords: a long line is cut between words, with an ellipsis, never mid-word', async (t) => {
  t.equal(cutBetweenWords('short enough', 20), 'short enough', 'a line that fits is kept')
  t.equal(cutBetweenWords('exactly ten', 11), 'exactly ten')
  const cut = cutBetweenWords('the provider said something rather long, about the request', 30)
  t.equal(cut, 'the provider said something…')
  t.ok(cut.length <= 30, 'within the cap, the ellipsis included')
  t.equal(cutBetweenWords('one, two, three, four', 12), 'one, two…', 'no punctuation left before the ellipsis')
  t.equal(cutBetweenWords('Supercalifragilisticexpialidocious', 10), 'Supercali…', 'one word longer than the cap is cut at the cap')
})

t.test('quotable: the provider\'s long answer is quoted cut between words', async (t) => {
  const words = Array.from({ length: 60 }, (_, i) => `word${i}`).join(' ')
  const quote = quotable(words, []) ?? ''
  t.ok(quote.endsWith('…'))
  t.ok(quote.length <= 160)
  const kept = quote.slice(0, -1)
  t.ok(words.startsWith(kept) && words[kept.length] === ' ', `cut between words: ${quote}`)
})
