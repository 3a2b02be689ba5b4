// The official Elasticsearch JavaScript client's helpers against a real CameoDB server.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { Client } = require('@elastic/elasticsearch');
const { startServer } = require('./server');

let server;
let client;

before(async () => {
  server = await startServer();
  client = new Client({ node: server.url });
});

after(async () => {
  await client.close();
  await server.stop();
});

const books = Array.from({ length: 1200 }, (_, n) => ({
  id: `b${n}`,
  title: n % 3 === 0 ? `Dune part ${n}` : `Emma volume ${n}`,
  year: 1900 + (n % 120),
}));

test('helpers.bulk indexes every document and reports none failed', async () => {
  const stats = await client.helpers.bulk({
    datasource: books,
    onDocument: (doc) => ({ index: { _index: 'js-books', _id: doc.id } }),
    refreshOnCompletion: 'js-books',
    flushBytes: 20_000,
  });
  assert.equal(stats.total, books.length);
  assert.equal(stats.successful, books.length);
  assert.equal(stats.failed, 0);
  const { count } = await client.count({ index: 'js-books' });
  assert.equal(count, books.length);
});

test('helpers.scrollDocuments pages through every match', async () => {
  const seen = new Set();
  for await (const doc of client.helpers.scrollDocuments({
    index: 'js-books',
    size: 100,
    query: { match: { title: 'dune' } },
  })) {
    seen.add(doc.id);
  }
  assert.equal(seen.size, books.filter((b) => b.title.startsWith('Dune')).length);
});

test('helpers.search returns the sources of the hits', async () => {
  const docs = await client.helpers.search({
    index: 'js-books',
    size: 5,
    query: { range: { year: { gte: 2010 } } },
    sort: [{ year: 'desc' }],
  });
  assert.equal(docs.length, 5);
  for (const doc of docs) assert.ok(doc.year >= 2010);
  assert.equal(docs[0].year, 2019);
});

test('aliases, settings and mappings through the client', async () => {
  await client.indices.putAlias({ index: 'js-books', name: 'js-library' });
  const aliases = await client.indices.getAlias({ name: 'js-library' });
  assert.deepEqual(Object.keys(aliases), ['js-books']);
  const settings = await client.indices.getSettings({ index: 'js-books' });
  assert.ok(settings['js-books'].settings.index.uuid);
  const mapping = await client.indices.getMapping({ index: 'js-library' });
  assert.equal(mapping['js-books'].mappings.properties.year.type, 'long');
  const found = await client.search({ index: 'js-library', q: 'emma', size: 0 });
  assert.equal(found.hits.total.value, books.filter((b) => b.title.startsWith('Emma')).length);
});
