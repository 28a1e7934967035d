// graphql-schema-linter's rules for schema.graphql (scripts/lint_schema.sh, `make lint-schema`).
// Issue 20: every type, field, argument, input field and enum value is described
// (backend/schema/descriptions.toml), and connections follow the Relay spec.
module.exports = {
  rules: [
    // descriptions (issue 20 item 8)
    "types-have-descriptions",
    "fields-have-descriptions",
    "arguments-have-descriptions",
    "input-object-values-have-descriptions",
    "enum-values-have-descriptions",
    "descriptions-are-capitalized",
    // Relay (issue 20 items 1-2)
    "relay-connection-types-spec",
    "relay-connection-arguments-spec",
    "relay-page-info-spec",
  ],
  ignore: {},
};
