-- The current state of every model and adapter: the newest lifecycle row, with the newest
-- non-empty registration details (manifest, eval scores, attributes) carried forward.
CREATE OR REPLACE VIEW model_registry_current AS
SELECT
    model_id,
    argMax(state, ts)                                           AS state,
    max(ts)                                                     AS updated_at,
    min(ts)                                                     AS registered_at,
    argMax(kind, ts)                                            AS kind,
    argMax(cluster_id, ts)                                      AS cluster_id,
    argMaxIf(base_model, ts, base_model IS NOT NULL)            AS base_model,
    argMaxIf(manifest_uri, ts, manifest_uri IS NOT NULL)        AS manifest_uri,
    argMaxIf(manifest_sha256, ts, manifest_sha256 IS NOT NULL)  AS manifest_sha256,
    argMaxIf(eval_scores, ts, length(eval_scores) > 0)          AS eval_scores,
    argMaxIf(attributes, ts, length(attributes) > 0)            AS attributes,
    argMax(reason, ts)                                          AS last_reason
FROM model_registry FINAL
GROUP BY model_id
