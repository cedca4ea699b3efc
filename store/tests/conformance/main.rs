//! One conformance suite, run against both backends: the embedded redb store and a real etcd
//! (plain, and over mutual TLS).

#[path = "../support/mod.rs"]
mod support;

mod cases;

macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let backend = crate::support::$backend().await;
                    crate::cases::$case(&backend.store).await;
                }
            )*
        }
    };
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        conformance!(embedded: $($case),*);
        conformance!(etcd: $($case),*);
    };
}

both_backends!(
    get_put_delete,
    list_and_count_by_prefix,
    txn_absent,
    txn_present,
    txn_mod_revision,
    txn_value,
    txn_multi_op_is_atomic,
    txn_rejects_invalid,
    revision_is_monotonic,
    watch_from_zero,
    watch_from_middle,
    watch_live,
    watch_resume_after_reconnect,
    watch_filters_prefix,
    concurrent_create_if_absent,
    election_fence,
);

// The same cases over mutual TLS (CA-verified server, client certificate): the operations'
// behaviour does not depend on the transport, but every RPC kind must pass through it.
conformance!(etcd_tls:
    get_put_delete,
    list_and_count_by_prefix,
    txn_absent,
    txn_present,
    txn_mod_revision,
    txn_value,
    txn_multi_op_is_atomic,
    txn_rejects_invalid,
    revision_is_monotonic,
    watch_from_zero,
    watch_from_middle,
    watch_live,
    watch_resume_after_reconnect,
    watch_filters_prefix,
    concurrent_create_if_absent,
    election_fence,
);
