# Least-privilege policy for the nsauth Vault/OpenBao store at
#   vault://HOST:PORT/secret/nsauth
# (KV v2 mount "secret", prefix "nsauth"). For another mount or prefix, replace
# "secret" and "nsauth" below. Sub-prefixes (vault://HOST:PORT/secret/nsauth/team-a)
# are covered by the globs.

# The records: read (load), create (first write, cas=0), update (later writes, cas=N,
# and the tombstone a delete writes with cas=N).
path "secret/data/nsauth/*" {
  capabilities = ["create", "read", "update"]
}

# The metadata: list (list profiles), read (current version: before a delete, and
# whether a listed profile still exists), patch (custom metadata naming the writer of
# each version). A delete keeps the metadata, so that a re-created profile's versions
# continue from the deleted one's and are never reused.
path "secret/metadata/nsauth/*" {
  capabilities = ["list", "read", "patch"]
}

# Destroy (delete a profile: the data of all its versions is removed for good).
path "secret/destroy/nsauth/*" {
  capabilities = ["update"]
}
