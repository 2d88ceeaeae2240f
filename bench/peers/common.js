'use strict'
// What both peers share (bench/run --peers, see bench/README.md): the command line, the jobs' payloads,
// the SMS request to the sandbox gateway (json dialect, kept-alive connections) and the result line.

const crypto = require('node:crypto')
const http = require('node:http')
const { performance } = require('node:perf_hooks')

// node PEER.js PHASE --host SOCKETDIR --user ROLE --db DB --kind noop|sms --n N [--url URL] [--chunk N] [--timeout S]
// PHASE: migrate (create the schema and the queue), enqueue (N jobs in bulk), work (run the workers until
// the N jobs are completed in the database). One JSON line on stdout; the peer's own logs go to stderr.
function args () {
  const argv = process.argv.slice(2)
  const a = { phase: argv.shift(), user: 'postgres', db: 'peer', kind: 'noop', n: 10000, chunk: 10000, timeout: 600 }
  while (argv.length) {
    const k = argv.shift().replace(/^--/, '')
    const v = argv.shift()
    if (!(k in a) && !['host', 'url'].includes(k)) throw new Error(`unknown option --${k}`)
    a[k] = ['n', 'chunk', 'timeout'].includes(k) ? Number(v) : v
  }
  if (!['migrate', 'enqueue', 'work'].includes(a.phase)) throw new Error('phase: migrate, enqueue or work')
  if (!['noop', 'sms'].includes(a.kind)) throw new Error('--kind: noop or sms')
  if (!a.host) throw new Error('--host: the cluster\'s socket directory')
  if (a.kind === 'sms' && a.phase === 'work' && !a.url) throw new Error('--url: the sandbox gateway')
  return a
}

// The payload of job i: nothing to speak of for a no-op; for an SMS, a unique number and the rendered French
// reminder (~150 characters, UCS-2 as payremind's French texts are), as an application would queue it.
function payload (kind, i) {
  if (kind === 'noop') return { i }
  const cents = 1000 + (i * 7919) % 90000
  const amount = `${Math.floor(cents / 100)},${String(cents % 100).padStart(2, '0')}`
  const token = crypto.randomBytes(16).toString('base64url')
  return {
    to: `+1514${String(2000000 + i).padStart(7, '0')}`,
    text: `ARO : paiement de ${amount} $ dû depuis le 3 mars. Payez ici : https://pay.aro.ca/p/${token} ` +
      'ou textez ARRET pour ne plus recevoir de rappels.'
  }
}

// POST one SMS to the sandbox as payremind's json dialect does: {"from","to","text","reference"} with the job id
// as the reference and the Idempotency-Key. At most 64 connections at once, kept alive (payremind's
// max_in_flight = 64). Resolves to the HTTP status.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

function sendSms (url, id, to, text) {
  const body = JSON.stringify({ from: '27022', to, text, reference: String(id) })
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'Idempotency-Key': String(id)
      }
    }, res => {
      res.on('data', () => {})
      res.on('end', () => resolve(res.statusCode))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

function is2xx (status) {
  return status >= 200 && status < 300
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// A clock for the measured phase: wall seconds and this process's CPU seconds since start().
function stopwatch () {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  return () => {
    const c = process.cpuUsage(c0)
    return { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 }
  }
}

function result (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

// A run that has not ended by --timeout seconds is a failure, not a hang.
function watchdog (a) {
  const t = setTimeout(() => {
    process.stderr.write(`peer: ${a.phase} did not end within ${a.timeout} s\n`)
    process.exit(2)
  }, a.timeout * 1000)
  t.unref()
}

// Enqueue the N jobs of --kind in bulk, --chunk per call of insert(jobs), job j made by make(j, payload):
// the phase's wall and CPU seconds.
async function enqueueAll (a, make, insert) {
  const clock = stopwatch()
  for (let i = 0; i < a.n; i += a.chunk) {
    const jobs = []
    for (let j = i; j < Math.min(a.n, i + a.chunk); j++) jobs.push(make(j, payload(a.kind, j)))
    await insert(jobs)
  }
  return clock()
}

// Handlers count the jobs they finished; `finished` resolves once they reach n.
function countdown (n) {
  const c = { done: 0 }
  c.finished = new Promise(resolve => {
    c.add = k => {
      c.done += k
      if (c.done >= n) resolve()
    }
  })
  return c
}

// Poll (every 5 ms) until ready() answers a value that satisfies ok; that value.
async function pollUntil (ready, ok) {
  let v
  while (!ok(v = await ready())) await sleep(5)
  return v
}

// Run the phase of the command line; exit 0, or 1 with the error on stderr.
function runPhase (name, a, phases) {
  phases[a.phase]().then(() => process.exit(0), err => {
    process.stderr.write(`${name} ${a.phase}: ${err.stack || err}\n`)
    process.exit(1)
  })
}

module.exports = { args, payload, sendSms, is2xx, stopwatch, result, watchdog, enqueueAll, countdown, pollUntil, runPhase }
