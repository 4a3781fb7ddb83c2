import t from 'tap'
import { lines, runCli, tempDir } from './capture.js'

// Issue 19: with METRICS_PORT set, doctor says where the metrics are and whether more than this machine reaches
// them; without it, it says nothing about metrics.

function metricsLine (stdout: string): string | undefined {
  return lines(stdout).find((line) => line.slice(5).startsWith('metrics:'))
}

t.test('doctor names the metrics listener only when METRICS_PORT is set', async (t) => {
  const cwd = await tempDir(t)
  const off = await runCli(['doctor'], { env: {}, cwd })
  t.equal(off.code, 0)
  t.equal(metricsLine(off.stdout), undefined, 'no METRICS_PORT: no metrics line')

  const local = await runCli(['doctor'], { env: { METRICS_PORT: '9464' }, cwd })
  t.equal(local.code, 0)
  t.equal(metricsLine(local.stdout), 'ok   metrics: http://127.0.0.1:9464/metrics, loopback only: Prometheus must run on this machine (METRICS_HOST says where to listen)')

  const wide = await runCli(['doctor'], { env: { METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0' }, cwd })
  t.equal(wide.code, 0)
  t.equal(metricsLine(wide.stdout), 'ok   metrics: http://0.0.0.0:9464/metrics: reachable beyond this machine, so let only Prometheus reach it (a firewall, a private network)')

  const bad = await runCli(['doctor'], { env: { METRICS_PORT: '3000' }, cwd })
  t.equal(bad.code, 1, 'the example would refuse to start')
  t.ok(lines(bad.stdout).includes('FAIL configuration: METRICS_PORT: must differ from PORT: metrics are never served on the public listener'), bad.stdout)
  t.equal(metricsLine(bad.stdout), undefined, 'no metrics line for a listener the example would refuse')

  const bracketed = await runCli(['doctor'], { env: { METRICS_PORT: '9464', METRICS_HOST: '[::1]' }, cwd })
  t.equal(bracketed.code, 1, 'the example would refuse to start')
  t.ok(lines(bracketed.stdout).includes('FAIL configuration: METRICS_HOST: must be an address without brackets: ::1'), bracketed.stdout)
  t.equal(metricsLine(bracketed.stdout), undefined, 'no metrics line with a doubly bracketed address')

  // HOST refused first: the configuration's line names HOST only, and the metrics line says what is wrong with its own.
  const both = await runCli(['doctor'], { env: { HOST: 'http://0.0.0.0', METRICS_PORT: '9464', METRICS_HOST: '[::1]' }, cwd })
  t.equal(both.code, 1)
  t.equal(metricsLine(both.stdout), 'FAIL metrics: METRICS_HOST: must be an address without brackets: ::1', both.stdout)

  const noPort = await runCli(['doctor'], { env: { HOST: '[::1]', METRICS_HOST: 'http://x' }, cwd })
  t.equal(noPort.code, 1)
  t.equal(metricsLine(noPort.stdout), 'FAIL metrics: METRICS_HOST: must be a host name or address, not a URL (e.g. 127.0.0.1, ::1, 0.0.0.0 or localhost)', 'without METRICS_PORT too: the example refuses it all the same')

  const any = await runCli(['doctor'], { env: { METRICS_PORT: '0' }, cwd })
  t.equal(any.code, 0)
  t.equal(metricsLine(any.stdout), 'ok   metrics: http://127.0.0.1, on any free port (METRICS_PORT=0; the server logs which), loopback only: Prometheus must run on this machine (METRICS_HOST says where to listen)',
    'no made-up :0 for the port the server will choose')
  const padded = await runCli(['doctor'], { env: { METRICS_PORT: '09464' }, cwd })
  t.match(metricsLine(padded.stdout), /^ok {3}metrics: http:\/\/127\.0\.0\.1:9464\/metrics,/, 'the port as the server reads it')

  const misspelt = await runCli(['doctor'], { env: { METRIC_PORT: '9464' }, cwd })
  t.equal(metricsLine(misspelt.stdout), undefined, 'METRIC_PORT turns on no listener')
  t.ok(lines(misspelt.stdout).includes('warn METRIC_PORT: set but not read (did you mean METRICS_PORT?)'), misspelt.stdout)

  const v6 = await runCli(['doctor'], { env: { METRICS_PORT: '9464', METRICS_HOST: '::1' }, cwd })
  t.equal(v6.code, 0)
  t.equal(metricsLine(v6.stdout), 'ok   metrics: http://[::1]:9464/metrics, loopback only: Prometheus must run on this machine (METRICS_HOST says where to listen)')
})
