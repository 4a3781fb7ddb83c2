import t from 'tap'
import { StoreUnavailableError } from '@fastify-aihubmix/token-store'
import { TestBrowser } from '../helpers/browser.js'
import { apiStatus, internals, signIn, stackOn } from '../helpers/user-sessions-stack.js'

// each sign-in of a user with another index entry now sweeps the whole index (a read of every
// other session, ends, deletes, reseals) inside addUserSession, and the callback turns any failure there into a
// failed sign-in (503 store_unavailable, token set cleared, grant revoked). The sweep is housekeeping: everything
// the new session needs (token set, link, entry) is already stored when it runs. One failed read of ANOTHER
// device's session now fails this device's sign-in; before, a sign-in below the cap read nothing else.

t.test('a failed read of another session during the sign-in sweep does not fail the sign-in', async (t) => {
  const stack = await stackOn(t, 'memory')
  if (stack === undefined) return
  const laptop = await signIn(stack, 'laptop')
  const laptopSid = stack.sessionIdOf(laptop)
  const { kv, keys } = internals(stack)
  const getMany = kv.getMany.bind(kv)
  let injected = 0
  ;(kv as { getMany: typeof kv.getMany }).getMany = async (list) => {
    if (list.includes(keys.session(laptopSid)) && injected === 0) {
      injected++
      throw new StoreUnavailableError({ cause: new Error('one command timed out (injected)') })
    }
    return await getMany(list)
  }
  const phone = new TestBrowser()
  let failure: string | undefined
  try {
    await signIn(stack, 'phone', phone)
  } catch (err) {
    failure = (err as Error).message
  }
  t.equal(injected, 1, 'the sweep read the laptop\'s session (and that read failed)')
  t.equal(failure, undefined, `the phone's sign-in succeeded (${failure ?? 'ok'})`)
  t.equal(await apiStatus(stack, phone), 200, 'the phone is signed in')
  t.equal(await apiStatus(stack, laptop), 200, 'the laptop still is')
})
