import t from 'tap'
import { placeholder } from '@fastify-aihubmix/token-store'
t.equal(placeholder, 1)
