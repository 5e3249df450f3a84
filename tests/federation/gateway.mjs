// A real federation gateway (@apollo/gateway under Apollo Server 4) over a supergraph.
//   node gateway.mjs supergraph.graphql PORT
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { ApolloGateway } from '@apollo/gateway';

const gateway = new ApolloGateway({ supergraphSdl: readFileSync(process.argv[2], 'utf8') });
const server = new ApolloServer({ gateway, csrfPrevention: false });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(process.argv[3]), host: '127.0.0.1' },
});
console.log(`gateway at ${url}`);
