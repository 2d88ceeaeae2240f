'use strict'
// pg-boss as a peer of payremind in bench/run --peers (see common.js for the command line).

const pg = require('pg')
const PgBoss = require('pg-boss')
const common = require('./common')

// Its documented ways to throughput in v10 (README and types.d.ts; teamSize is gone since v10): several
// workers, each a work() registration polling its own batches, and a large batchSize; the handler gets the
// whole batch and pg-boss completes it with one statement. A worker waits pollingIntervalSeconds (default 2)
// minus the time its batch took before it fetches again, even after a full batch, so the interval is set to
// the smallest allowed (0.5 s). The pool (max) keeps its default, 10: 4 workers fetch and complete on it.
const WORKERS = 4
const SETTINGS = { workers: WORKERS, batchSize: 2000, pollingIntervalSeconds: 0.5, max: 10 }

const a = common.args()
common.watchdog(a)

function boss () {
  const b = new PgBoss({ host: a.host, user: a.user, database: a.db, max: SETTINGS.max })
  b.on('error', err => process.stderr.write(`pg-boss error: ${err.stack || err.message || err}\n`))
  return b
}

async function migrate () {
  const b = boss()
  await b.start() // creates the schema (migrate: true by default)
  await b.createQueue(a.kind) // required since v10: each queue is a partition of its own
  await b.stop({ graceful: false, wait: true })
  common.result({ ok: true })
}

async function enqueue () {
  const b = boss()
  await b.start()
  const m = await common.enqueueAll(a, (j, data) => ({ name: a.kind, data }), jobs => b.insert(jobs))
  await b.stop({ graceful: false, wait: true })
  common.result({ ok: true, jobs: a.n, ...m })
}

async function work () {
  const count = common.countdown(a.n)
  let errors = 0
  const handlers = {
    noop: async jobs => count.add(jobs.length),
    // the batch's SMS all at once: the agent keeps at most 64 requests in flight, shared by the 4 workers
    sms: async jobs => {
      const statuses = await Promise.all(jobs.map(j => common.sendSms(a.url, j.id, j.data.to, j.data.text)))
      const bad = statuses.filter(s => !common.is2xx(s)).length
      if (bad) {
        errors += bad
        throw new Error(`the gateway answered ${bad} of ${jobs.length} requests with an error`) // fails the batch
      }
      count.add(jobs.length)
    }
  }
  const probe = new pg.Client({ host: a.host, user: a.user, database: a.db })
  await probe.connect()
  const clock = common.stopwatch()
  const b = boss()
  await b.start()
  for (let w = 0; w < WORKERS; w++) {
    await b.work(a.kind, { batchSize: SETTINGS.batchSize, pollingIntervalSeconds: SETTINGS.pollingIntervalSeconds },
      handlers[a.kind])
  }
  await count.finished
  // every handler has returned: pg-boss completes a batch after its handler without waiting for it, so wait
  // until the database holds N completed jobs
  const completed = await common.pollUntil(async () => (await probe.query(
    "SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'", [a.kind])).rows[0].n,
  n => n >= a.n)
  const m = clock()
  await b.stop({ graceful: true, wait: true, timeout: 5000 })
  await probe.end()
  common.result({ ok: errors === 0 && completed === a.n, jobs: count.done, errors, ...m, settings: SETTINGS })
}

common.runPhase('pg-boss', a, { migrate, enqueue, work })
