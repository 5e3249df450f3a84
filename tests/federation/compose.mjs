// Compose subgraph SDLs into a supergraph with @theguild/federation-composition.
//   node compose.mjs subgraphs.json supergraph.graphql
//   subgraphs.json: {"name": {"url": "http://...", "sdl": "..."}}
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'graphql';
import { composeServices } from '@theguild/federation-composition';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const result = composeServices(
  Object.entries(spec).map(([name, s]) => ({ name, typeDefs: parse(s.sdl), url: s.url })));
if (result.errors && result.errors.length) {
  console.error(result.errors.map((e) => e.message).join('\n'));
  process.exit(1);
}
writeFileSync(process.argv[3], result.supergraphSdl);
