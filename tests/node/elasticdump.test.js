// An elasticdump round trip with its default options: export an index's settings, mapping,
// alias and data to files, import them into another index, and compare.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Client } = require('@elastic/elasticsearch');
const { startServer } = require('./server');

const elasticdump = path.join(__dirname, 'node_modules', '.bin', 'elasticdump');

let server;
let client;
let dir;

function dump(input, output, type) {
  return new Promise((resolve, reject) => {
    execFile(elasticdump, [`--input=${input}`, `--output=${output}`, `--type=${type}`],
      { timeout: 120_000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`elasticdump ${type} failed: ${err.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
  });
}

before(async () => {
  server = await startServer();
  client = new Client({ node: server.url });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cameodb-dump-'));
  await client.indices.create({
    index: 'dump-src',
    settings: {
      number_of_replicas: 0,
      analysis: { analyzer: { folded: { tokenizer: 'standard', filter: ['lowercase', 'asciifolding'] } } },
    },
    mappings: {
      properties: {
        title: { type: 'text', analyzer: 'folded' },
        tag: { type: 'keyword' },
        n: { type: 'integer' },
      },
    },
    aliases: { 'dump-alias': {} },
  });
  const operations = [];
  for (let n = 0; n < 250; n += 1) {
    operations.push({ index: { _index: 'dump-src', _id: `d${n}` } });
    operations.push({ title: `Crème ${n}`, tag: `t${n % 5}`, n });
  }
  const answer = await client.bulk({ operations, refresh: true });
  assert.equal(answer.errors, false);
});

after(async () => {
  await client.close();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('export and import settings, mapping, alias and data', async () => {
  const source = `${server.url}/dump-src`;
  const target = `${server.url}/dump-dst`;
  for (const type of ['settings', 'mapping', 'alias', 'data']) {
    await dump(source, path.join(dir, `${type}.json`), type);
    assert.ok(fs.statSync(path.join(dir, `${type}.json`)).size > 0, `${type} exported`);
  }
  // The alias file names the source index: point it at the target, as one does to copy.
  const aliasFile = path.join(dir, 'alias.json');
  fs.writeFileSync(aliasFile, fs.readFileSync(aliasFile, 'utf8').replaceAll('dump-src', 'dump-dst')
    .replaceAll('dump-alias', 'dump-alias-copy'));
  for (const type of ['settings', 'mapping', 'alias', 'data']) {
    await dump(path.join(dir, `${type}.json`), target, type);
  }
  await client.indices.refresh({ index: 'dump-dst' });
  const { count } = await client.count({ index: 'dump-dst' });
  assert.equal(count, 250);
  const mapping = await client.indices.getMapping({ index: 'dump-dst' });
  assert.equal(mapping['dump-dst'].mappings.properties.title.analyzer, 'folded');
  assert.equal(mapping['dump-dst'].mappings.properties.n.type, 'integer');
  const settings = await client.indices.getSettings({ index: 'dump-dst' });
  assert.ok(settings['dump-dst'].settings.index.analysis.analyzer.folded);
  const aliases = await client.indices.getAlias({ index: 'dump-dst' });
  assert.deepEqual(Object.keys(aliases['dump-dst'].aliases), ['dump-alias-copy']);
  // The copied analyzer folds as the source's did.
  const found = await client.search({ index: 'dump-dst', query: { match: { title: 'creme 7' } } });
  assert.equal(found.hits.hits[0]._id, 'd7');
  const doc = await client.get({ index: 'dump-dst', id: 'd42' });
  assert.deepEqual(doc._source, { title: 'Crème 42', tag: 't2', n: 42 });
});
