// graphql-codegen: typed documents and persisted-query hashes from the operations in
// src/operations/*.graphql, checked against the API's committed schema.
//   npm run codegen   → src/gql/ (git-ignored): graphql.ts, persisted-documents.json
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  schema: '../../schema.graphql', // `make docs` keeps it equal to the server's
  documents: ['src/operations/**/*.graphql'],
  ignoreNoDocuments: false,
  generates: {
    './src/gql/': {
      preset: 'client',
      presetConfig: {
        fragmentMasking: false,
        // persisted-documents.json is {sha256: document}: what
        // `xinfang persisted-queries load` reads (./load-persisted-queries.sh)
        persistedDocuments: { mode: 'embedHashInDocument', hashAlgorithm: 'sha256' },
      },
      config: {
        enumsAsTypes: true,
        useTypeImports: true,
        strictScalars: true,
        scalars: { Date: 'string', DateTime: 'string', JSON: 'unknown' },
      },
    },
  },
};

export default config;
