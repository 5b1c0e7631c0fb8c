#!/bin/sh
# One-shot set-up of MinIO for the compose stack (service `minio-init`, image minio/mc), safe to run again on
# every `docker compose up`: the lake's bucket, and an access key that may use that bucket and nothing else, so the
# ingestor and the Dagster code server never hold MinIO's root credentials. Secrets come from the environment
# (compose reads them from .env) and are never echoed.
set -eu
mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing local/mdp-lake
mc admin policy create local mdp-lake /deploy/minio/mdp-lake-policy.json
mc admin user add local "$MDP_S3_ACCESS_KEY" "$MDP_S3_SECRET_KEY" >/dev/null
# attaching a policy that is attached already fails with "already in effect": that is the state we want
if ! out=$(mc admin policy attach local mdp-lake --user "$MDP_S3_ACCESS_KEY" 2>&1); then
    case "$out" in
        *"already in effect"*) ;;
        *) echo "$out" >&2; exit 1 ;;
    esac
fi
echo "minio-init: bucket mdp-lake and its access key are ready"
