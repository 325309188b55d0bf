# Least-privilege policy for the nsauth Vault/OpenBao store at
#   vault://HOST:PORT/secret/nsauth
# (KV v2 mount "secret", prefix "nsauth"). For another mount or prefix, replace
# "secret" and "nsauth" below. Sub-prefixes (vault://HOST:PORT/secret/nsauth/team-a)
# are covered by the globs.

# The records: read (load), create (first write, cas=0), update (later writes, cas=N).
path "secret/data/nsauth/*" {
  capabilities = ["create", "read", "update"]
}

# The metadata: list (list profiles), read (current version before a delete),
# patch (custom metadata naming the writer of each version), delete (remove a
# profile with all its versions).
path "secret/metadata/nsauth/*" {
  capabilities = ["list", "read", "patch", "delete"]
}
