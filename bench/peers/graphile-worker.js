'use strict'
// graphile-worker as a peer of payremind in bench/run --peers (see common.js for the command line).

const pg = require('pg')
const { run, makeWorkerUtils, Logger } = require('graphile-worker')
const common = require('./common')

// Its documented high-throughput settings (worker.graphile.org/docs/performance, and the option docs in
// dist/index.d.ts): a local queue that fetches and locks jobs in batches, and completions batched.
// maxPoolSize: the docs suggest max(10, concurrentJobs + 2), but the benchmark's cluster has
// max_connections = 50; with the local queue and batched completions the workers do not hold a connection
// per job (the jobs themselves never query), so the performance page's own 25 is used.
const CONCURRENCY = 64
const SETTINGS = {
  concurrentJobs: CONCURRENCY,
  maxPoolSize: 25,
  localQueue: { size: 4 * CONCURRENCY },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0
}

const a = common.args()
common.watchdog(a)
const connectionString = `postgres:///${a.db}?host=${encodeURIComponent(a.host)}&user=${encodeURIComponent(a.user)}`
// Warnings and errors only: its default logger writes a line per completed job at level info, which payremindd
// does not do either (it logs failures and a summary).
const logger = new Logger(scope => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`graphile-worker ${level}: ${message}\n`)
})

async function migrate () {
  const utils = await makeWorkerUtils({ connectionString, logger })
  await utils.migrate()
  await utils.release()
  common.result({ ok: true })
}

async function enqueue () {
  const utils = await makeWorkerUtils({ connectionString, logger })
  await utils.migrate() // already done: one query, and the first connection made before the clock starts
  const m = await common.enqueueAll(a, (j, payload) => ({ identifier: a.kind, payload }), specs => utils.addJobs(specs))
  await utils.release()
  common.result({ ok: true, jobs: a.n, ...m })
}

async function work () {
  const count = common.countdown(a.n)
  let errors = 0
  const tasks = {
    noop: async () => count.add(1),
    sms: async (payload, helpers) => {
      const status = await common.sendSms(a.url, helpers.job.id, payload.to, payload.text)
      if (!common.is2xx(status)) {
        errors++
        throw new Error(`the gateway answered ${status}`)
      }
      count.add(1)
    }
  }
  const probe = new pg.Client({ host: a.host, user: a.user, database: a.db })
  await probe.connect()
  const clock = common.stopwatch()
  const runner = await run({ connectionString, logger, noHandleSignals: true, taskList: { [a.kind]: tasks[a.kind] }, preset: { worker: SETTINGS } })
  await count.finished
  // every handler has returned: wait for the last batched completions to reach the database (completed jobs
  // are deleted)
  const left = await common.pollUntil(async () => (await probe.query(
    'SELECT count(*)::int AS n FROM graphile_worker._private_jobs')).rows[0].n, n => n === 0)
  const m = clock()
  await runner.stop()
  await probe.end()
  common.result({ ok: errors === 0 && left === 0, jobs: count.done, errors, ...m, settings: SETTINGS })
}

common.runPhase('graphile-worker', a, { migrate, enqueue, work })
