/*
 * test_store_pg.c - the PostgreSQL backend (store_pg.c) against a real
 * server, below store.c: what two instances' writers do to each other.
 *
 * Needs OE_TEST_PG_URL (scripts/test.sh runs it in its PostgreSQL pass);
 * without it, it says so and passes.  Every run works in a fresh database of
 * that cluster, dropped at the end.
 *
 * Proves: a claim waits for another writer's uncommitted claim of the same
 * nonce and then sees its row (or goes in if that one rolled back); an
 * approval used by one writer is refused to the other without undoing the
 * rest of its batch; two writers that claim two nonces in opposite orders
 * deadlock, and exactly one batch fails (closed) while the other commits; a
 * failing deferred (pipelined) statement fails the commit and leaves the
 * connection usable; leases refuse a live holder and another key; mark /
 * list of interrupted claims; no password in any error.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store_backend.h"
#include "testutil.h"
#include "util.h"

static const store_backend_ops *ops = &store_pg_ops;
static oe_config cfg;
static char db_url[1024];

/* ---- a fresh database ----------------------------------------------------- */

static int admin(const char *base, const char *sql)
{
    PGconn *c = PQconnectdb(base);
    PGresult *r;
    int ok;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "cannot connect to OE_TEST_PG_URL\n");
        PQfinish(c);
        return -1;
    }
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* base with its database replaced by name (URL form .../db[?query]). */
static int with_database(const char *base, const char *name, char *out, size_t cap)
{
    const char *q = strchr(base, '?');
    const char *end = q ? q : base + strlen(base);
    const char *slash = end;

    while (slash > base && *slash != '/')
        slash--;
    if (slash <= base || slash[-1] == '/')
        return -1;
    return snprintf(out, cap, "%.*s/%s%s", (int)(slash - base), base, name, q ? q : "") < (int)cap
               ? 0
               : -1;
}

/* ---- items ---------------------------------------------------------------- */

typedef struct test_item {
    store_item item;
    char nonce[64];
} test_item;

static void make_item(test_item *t, const char *nonce, store_item_kind kind)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->nonce, sizeof(t->nonce), "%s", nonce);
    t->item.kind = kind;
    t->item.nonce = t->nonce;
    t->item.nonce_len = strlen(t->nonce);
    t->item.action_hash = "0000000000000000000000000000000000000000000000000000000000000000";
    t->item.receipt.action = "echo";
    t->item.receipt.action_len = 4;
    oe_uuid4(t->item.receipt.exec_id);
    t->item.status = 200;
    oe_buf_init(&t->item.prefix, 4096);
    oe_buf_puts(&t->item.prefix, "{\"answer\":\"prefix\"");
    t->item.tree_size = 1;
    t->item.result = STORE_FAILED;
}

static void free_item(test_item *t)
{
    if (t->item.result == STORE_NONCE_TAKEN)
        store_execution_free(&t->item.existing);
    oe_buf_free(&t->item.prefix);
}

static int claim(void *w, test_item *t)
{
    return ops->claim(w, &t->item, t->item.receipt.exec_id, "echo", "origin/test", 1);
}

static void *open_w(void)
{
    char why[512] = "";
    void *w = ops->open_writer(&cfg, why, sizeof(why));

    if (w == NULL)
        fprintf(stderr, "open_writer: %s\n", why);
    return w;
}

/* Claims and completes one execution in its own transaction. */
static int record(void *w, const char *nonce, const unsigned char *approval_sha,
                  const char *approval_id, char exec_id[37])
{
    test_item t;
    int ok;

    make_item(&t, nonce, STORE_ITEM_EXECUTION);
    t.item.approval_msg_sha256 = approval_sha;
    t.item.approval_id = approval_id;
    ok = ops->begin(w) == 0 && claim(w, &t) == 0 && t.item.result == STORE_COMMITTED &&
         ops->complete(w, &t.item, 1) == 0 && ops->commit(w) == 0;
    if (!ok)
        ops->rollback(w);
    if (exec_id)
        memcpy(exec_id, t.item.receipt.exec_id, 37);
    free_item(&t);
    return ok ? 0 : -1;
}

static int find(void *rd, const char *nonce, store_execution *ex)
{
    memset(ex, 0, sizeof(*ex));
    return ops->find_execution(rd, nonce, strlen(nonce), ex);
}

/* ---- a second writer on a thread ------------------------------------------ */

typedef struct claimer {
    void *w;
    test_item *t;
    int rc;
    volatile int done;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;

    c->rc = claim(c->w, c->t);
    c->done = 1;
    return NULL;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_claim_complete_and_read_back(void)
{
    void *w = open_w(), *rd;
    char why[256], exec_id[37];
    store_execution ex;

    CHECK(w != NULL);
    if (w == NULL)
        return;
    CHECK_INT(record(w, "rt-1", NULL, NULL, exec_id), 0);
    rd = ops->open_reader(&cfg, why, sizeof(why));
    CHECK(rd != NULL);
    if (rd != NULL) {
        CHECK_INT(find(rd, "rt-1", &ex), STORE_OK);
        CHECK_STR(ex.exec_id, exec_id);
        CHECK_INT(ex.state, EXEC_STATE_DONE);
        CHECK_INT(ex.status, 200);
        CHECK_STR(ex.action, "echo");
        CHECK(ex.approval_id == NULL);
        CHECK_INT((long long)ex.tree_size, 1);
        CHECK_STR(ex.response, "{\"answer\":\"prefix\"");
        store_execution_free(&ex);
        CHECK_INT(find(rd, "rt-missing", &ex), STORE_NOT_FOUND);
        ops->close_reader(rd);
    }
    ops->close_writer(w);
}

static void test_claim_waits_for_other_writer_then_sees_its_row(void)
{
    void *a = open_w(), *b = open_w();
    test_item ta, tb;
    claimer c;
    pthread_t th;

    CHECK(a && b);
    if (!a || !b)
        goto out;
    make_item(&ta, "wait-1", STORE_ITEM_EXECUTION);
    make_item(&tb, "wait-1", STORE_ITEM_EXECUTION);
    CHECK_INT(ops->begin(a), 0);
    CHECK_INT(claim(a, &ta), 0);
    CHECK_INT(ta.item.result, STORE_COMMITTED);
    CHECK_INT(ops->begin(b), 0);
    c = (claimer){b, &tb, -9, 0};
    pthread_create(&th, NULL, claim_thread, &c);
    sleep_ms(300);
    CHECK(!c.done); /* b waits for a's uncommitted row */
    CHECK_INT(ops->complete(a, &ta.item, 1), 0);
    CHECK_INT(ops->commit(a), 0);
    pthread_join(th, NULL);
    CHECK_INT(c.rc, 0);
    CHECK_INT(tb.item.result, STORE_NONCE_TAKEN);
    CHECK_STR(tb.item.existing.exec_id, ta.item.receipt.exec_id);
    CHECK_STR(tb.item.existing.response, "{\"answer\":\"prefix\"");
    CHECK_INT(ops->commit(b), 0);
    free_item(&ta);
    free_item(&tb);
out:
    ops->close_writer(a);
    ops->close_writer(b);
}

static void test_claim_goes_in_when_other_writer_rolls_back(void)
{
    void *a = open_w(), *b = open_w();
    test_item ta, tb;
    claimer c;
    pthread_t th;

    CHECK(a && b);
    if (!a || !b)
        goto out;
    make_item(&ta, "undo-1", STORE_ITEM_EXECUTION);
    make_item(&tb, "undo-1", STORE_ITEM_EXECUTION);
    CHECK_INT(ops->begin(a), 0);
    CHECK_INT(claim(a, &ta), 0);
    CHECK_INT(ops->begin(b), 0);
    c = (claimer){b, &tb, -9, 0};
    pthread_create(&th, NULL, claim_thread, &c);
    sleep_ms(300);
    CHECK(!c.done);
    ops->rollback(a);
    pthread_join(th, NULL);
    CHECK_INT(c.rc, 0);
    CHECK_INT(tb.item.result, STORE_COMMITTED);
    CHECK_INT(ops->complete(b, &tb.item, 1), 0);
    CHECK_INT(ops->commit(b), 0);
    free_item(&ta);
    free_item(&tb);
out:
    ops->close_writer(a);
    ops->close_writer(b);
}

static void test_approval_used_elsewhere_undoes_only_that_item(void)
{
    static const unsigned char sha[32] = {1, 2, 3};
    void *a = open_w(), *b = open_w(), *rd;
    test_item t1, t2;
    store_execution ex;
    char why[256];

    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_INT(record(a, "appr-1", sha, "approval-1", NULL), 0);
    make_item(&t1, "appr-2", STORE_ITEM_EXECUTION);
    t1.item.approval_msg_sha256 = sha;
    t1.item.approval_id = "approval-1";
    make_item(&t2, "appr-3", STORE_ITEM_EXECUTION);
    CHECK_INT(ops->begin(b), 0);
    CHECK_INT(claim(b, &t1), 0);
    CHECK_INT(t1.item.result, STORE_APPROVAL_USED);
    CHECK_INT(claim(b, &t2), 0);
    CHECK_INT(t2.item.result, STORE_COMMITTED);
    CHECK_INT(ops->complete(b, &t2.item, 1), 0);
    CHECK_INT(ops->commit(b), 0);
    /* The same approval_id with another message hash is the same approval. */
    {
        static const unsigned char other[32] = {9};
        test_item t3;
        make_item(&t3, "appr-4", STORE_ITEM_EXECUTION);
        t3.item.approval_msg_sha256 = other;
        t3.item.approval_id = "approval-1";
        CHECK_INT(ops->begin(b), 0);
        CHECK_INT(claim(b, &t3), 0);
        CHECK_INT(t3.item.result, STORE_APPROVAL_USED);
        CHECK_INT(ops->commit(b), 0);
        free_item(&t3);
    }
    rd = ops->open_reader(&cfg, why, sizeof(why));
    CHECK(rd != NULL);
    if (rd) {
        CHECK_INT(find(rd, "appr-2", &ex), STORE_NOT_FOUND);
        CHECK_INT(find(rd, "appr-4", &ex), STORE_NOT_FOUND);
        CHECK_INT(find(rd, "appr-3", &ex), STORE_OK);
        store_execution_free(&ex);
        ops->close_reader(rd);
    }
    free_item(&t1);
    free_item(&t2);
out:
    ops->close_writer(a);
    ops->close_writer(b);
}

typedef struct crosser {
    void *w;
    const char *first, *second;
    pthread_barrier_t *both_hold_first;
    int committed;
    test_item t1, t2;
} crosser;

static void *cross_thread(void *arg)
{
    crosser *x = arg;

    make_item(&x->t1, x->first, STORE_ITEM_EXECUTION);
    make_item(&x->t2, x->second, STORE_ITEM_EXECUTION);
    x->committed = 0;
    if (ops->begin(x->w) != 0 || claim(x->w, &x->t1) != 0) {
        pthread_barrier_wait(x->both_hold_first);
        ops->rollback(x->w);
        return NULL;
    }
    pthread_barrier_wait(x->both_hold_first);
    if (claim(x->w, &x->t2) == 0 && ops->complete(x->w, &x->t1.item, 1) == 0 &&
        (x->t2.item.result != STORE_COMMITTED || ops->complete(x->w, &x->t2.item, 1) == 0) &&
        ops->commit(x->w) == 0)
        x->committed = 1;
    else
        ops->rollback(x->w); /* frees its rows: the other one proceeds */
    return NULL;
}

static void test_opposite_order_claims_deadlock_one_batch_fails_closed(void)
{
    void *a = open_w(), *b = open_w(), *rd;
    pthread_barrier_t bar;
    crosser xa, xb;
    pthread_t ta, tb;
    store_execution e1, e2;
    char why[256];

    CHECK(a && b);
    if (!a || !b)
        goto out;
    pthread_barrier_init(&bar, NULL, 2);
    memset(&xa, 0, sizeof(xa));
    memset(&xb, 0, sizeof(xb));
    xa.w = a, xa.first = "dl-1", xa.second = "dl-2", xa.both_hold_first = &bar;
    xb.w = b, xb.first = "dl-2", xb.second = "dl-1", xb.both_hold_first = &bar;
    pthread_create(&ta, NULL, cross_thread, &xa);
    pthread_create(&tb, NULL, cross_thread, &xb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&bar);
    CHECK_INT(xa.committed + xb.committed, 1);
    rd = ops->open_reader(&cfg, why, sizeof(why));
    CHECK(rd != NULL);
    if (rd) {
        crosser *won = xa.committed ? &xa : &xb;
        CHECK_INT(find(rd, "dl-1", &e1), STORE_OK);
        CHECK_INT(find(rd, "dl-2", &e2), STORE_OK);
        /* Both rows are the winner's: nothing of the failed batch remains. */
        CHECK_STR(won == &xa ? e1.exec_id : e2.exec_id, won->t1.item.receipt.exec_id);
        CHECK_STR(won == &xa ? e2.exec_id : e1.exec_id, won->t2.item.receipt.exec_id);
        store_execution_free(&e1);
        store_execution_free(&e2);
        ops->close_reader(rd);
    }
    /* The loser's writer is usable again. */
    CHECK_INT(record(xa.committed ? b : a, "dl-after", NULL, NULL, NULL), 0);
    free_item(&xa.t1);
    free_item(&xa.t2);
    free_item(&xb.t1);
    free_item(&xb.t2);
out:
    ops->close_writer(a);
    ops->close_writer(b);
}

static void test_failing_deferred_statement_fails_the_commit(void)
{
    void *w = open_w(), *rd;
    test_item t;
    oe_buf out;
    char why[256];

    CHECK(w != NULL);
    if (w == NULL)
        return;
    /* A duplicate receipt (same log and seq) fails inside the pipeline. */
    CHECK_INT(ops->begin(w), 0);
    CHECK_INT(ops->append_receipt(w, 999, 0, "x", "{\"a\":1}", 7), 0);
    CHECK_INT(ops->append_receipt(w, 999, 0, "x", "{\"a\":2}", 7), 0);
    CHECK(ops->commit(w) != 0);
    ops->rollback(w);
    /* Completing a nonce nobody claimed changes no row: refused. */
    make_item(&t, "never-claimed", STORE_ITEM_EXECUTION);
    CHECK_INT(ops->begin(w), 0);
    ops->complete(w, &t.item, 1);
    CHECK(ops->commit(w) != 0);
    ops->rollback(w);
    free_item(&t);
    /* Nothing of either is there, and the connection still works. */
    CHECK_INT(record(w, "after-failures", NULL, NULL, NULL), 0);
    CHECK_INT(ops->probe(w), 0);
    rd = ops->open_reader(&cfg, why, sizeof(why));
    CHECK(rd != NULL);
    if (rd) {
        oe_buf_init(&out, 1 << 20);
        CHECK_INT(ops->export_receipts(rd, 999, 0, 10, &out), STORE_OK);
        CHECK_INT((long long)out.len, 0);
        oe_buf_free(&out);
        ops->close_reader(rd);
    }
    ops->close_writer(w);
}

static int never_stale(const char *holder)
{
    (void)holder;
    return 0;
}

static void test_lease_refuses_live_holder_and_other_key(void)
{
    static const unsigned char k1[32] = {1}, k2[32] = {2};
    void *a = open_w(), *b = open_w();
    int64_t now = oe_now_us(), id_a = 0, id_b = 0;
    uint64_t size = 99;
    char why[256] = "";
    store_lease la = {"example.com/lease", k1, "host:1:a", now, now + 30000000, never_stale};
    store_lease lb = {"example.com/lease", k1, "host:2:b", now, now + 30000000, never_stale};
    store_lease lk = {"example.com/lease", k2, "host:3:c", now, now + 30000000, never_stale};

    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_INT(ops->begin(a), 0);
    CHECK_INT(ops->take_lease(a, &la, &id_a, &size, why, sizeof(why)), 0);
    CHECK_INT((long long)size, 0);
    CHECK_INT(ops->commit(a), 0);
    CHECK_INT(ops->begin(b), 0);
    CHECK(ops->take_lease(b, &lb, &id_b, &size, why, sizeof(why)) != 0);
    CHECK(strstr(why, "another live instance") != NULL);
    ops->rollback(b);
    CHECK_INT(ops->begin(b), 0);
    CHECK(ops->take_lease(b, &lk, &id_b, &size, why, sizeof(why)) != 0);
    CHECK(strstr(why, "another key") != NULL);
    ops->rollback(b);
    /* Released: the next holder takes the same log. */
    CHECK_INT(ops->begin(a), 0);
    CHECK_INT(ops->release_lease(a, id_a, la.holder), 0);
    CHECK_INT(ops->commit(a), 0);
    CHECK_INT(ops->begin(b), 0);
    CHECK_INT(ops->take_lease(b, &lb, &id_b, &size, why, sizeof(why)), 0);
    CHECK_INT(ops->commit(b), 0);
    CHECK_INT(id_a, id_b);
out:
    ops->close_writer(a);
    ops->close_writer(b);
}

static void count_pending(const store_pending *p, void *ctx)
{
    if (p->nonce_len == 9 && memcmp(p->nonce, "running-1", 9) == 0)
        ++*(int *)ctx;
}

static void test_interrupted_claims_are_marked_and_listed(void)
{
    void *w = open_w(), *rd;
    test_item t;
    int64_t cut = -1;
    int seen = 0;
    char why[256];

    CHECK(w != NULL);
    if (w == NULL)
        return;
    make_item(&t, "running-1", STORE_ITEM_CLAIM);
    CHECK_INT(ops->begin(w), 0);
    CHECK_INT(claim(w, &t), 0);
    CHECK_INT(ops->commit(w), 0);
    CHECK_INT(ops->begin(w), 0);
    CHECK_INT(ops->mark_unknown(w, "origin/other", &cut), 0);
    CHECK_INT(cut, 0);
    CHECK_INT(ops->mark_unknown(w, "origin/test", &cut), 0);
    CHECK_INT(cut, 1);
    CHECK_INT(ops->commit(w), 0);
    rd = ops->open_reader(&cfg, why, sizeof(why));
    CHECK(rd != NULL);
    if (rd) {
        CHECK(ops->list_pending(rd, count_pending, &seen) >= 1);
        CHECK_INT(seen, 1);
        ops->close_reader(rd);
    }
    free_item(&t);
    ops->close_writer(w);
}

static void test_errors_never_show_the_password(void)
{
    static const char secret[] = "Sup3rSecretPassw0rd";
    oe_config bad = cfg;
    char url[1200], why[512];
    const char *at = strchr(db_url + 13, '@');
    void *w;

    /* The right server, a wrong password: refused at once, password-free. */
    CHECK(at != NULL);
    if (at == NULL)
        return;
    snprintf(url, sizeof(url), "postgresql://openexec:%s%s", secret, at);
    bad.db_url = url;
    why[0] = '\0';
    w = ops->open_writer(&bad, why, sizeof(why));
    CHECK(w == NULL);
    CHECK(strstr(why, secret) == NULL);
    CHECK(strstr(why, "password authentication failed") != NULL);
    /* Not a URL libpq can parse: a message that quotes nothing of it. */
    snprintf(url, sizeof(url), "postgresql://u:%s@[::1/db", secret);
    w = ops->open_writer(&bad, why, sizeof(why));
    CHECK(w == NULL);
    CHECK(strstr(why, secret) == NULL);
    CHECK(strstr(why, "not a valid PostgreSQL") != NULL);
}

int main(void)
{
    const char *base = getenv("OE_TEST_PG_URL");
    char name[64], sql[160];

    if (base == NULL || *base == '\0') {
        printf("test_store_pg: OE_TEST_PG_URL is not set; skipped\n");
        return 0;
    }
    snprintf(name, sizeof(name), "oe_unit_%d_%u", (int)getpid(), (unsigned)(oe_now_us() & 0xffff));
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    if (admin(base, sql) != 0 || with_database(base, name, db_url, sizeof(db_url)) != 0)
        return 1;
    cfg.db_url = db_url;
    cfg.db_kind = OE_DB_POSTGRES;

    RUN(test_claim_complete_and_read_back);
    RUN(test_claim_waits_for_other_writer_then_sees_its_row);
    RUN(test_claim_goes_in_when_other_writer_rolls_back);
    RUN(test_approval_used_elsewhere_undoes_only_that_item);
    RUN(test_opposite_order_claims_deadlock_one_batch_fails_closed);
    RUN(test_failing_deferred_statement_fails_the_commit);
    RUN(test_lease_refuses_live_holder_and_other_key);
    RUN(test_interrupted_claims_are_marked_and_listed);
    RUN(test_errors_never_show_the_password);

    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", name);
    admin(base, sql);
    return tu_finish();
}
