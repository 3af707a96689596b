/* The request deadline of `lmadapt serve` (slowloris; request_timeout_s of server.h), for
 * server.c only.
 *
 * libmicrohttpd's timeout counts idle time only: a client that sends a byte of its headers
 * every few seconds would hold its connection (and thread) for ever. Every connection is on
 * the watchdog's list with a deadline by which its request must be in whole (headers and body):
 *   opened                    -> opened + R            (R = request_timeout_s)
 *   request line parsed       -> min(deadline, now + R)
 *   the body in               -> none (generation and the reply are not bounded by it)
 *   its response sent         -> now + idle timeout + R (the next request on a kept-alive
 *                                connection may idle, then must come in whole)
 * The watchdog thread answers a connection past its deadline with 408 and shuts its socket
 * down; libmicrohttpd's thread then sees the end of the stream and closes it. The fd is
 * shut down only under mu while the connection is on the list, and libmicrohttpd takes it
 * off the list (NOTIFY_CLOSED) before it closes the fd: never another socket.
 *
 * Ownership: the server holds an lma_watchdog (lma_watchdog_init before the daemon,
 * lma_watchdog_destroy after lma_watchdog_stop) and hands it to libmicrohttpd as the cls of
 * lma_watchdog_on_connection (MHD_OPTION_NOTIFY_CONNECTION) and lma_watchdog_on_uri
 * (MHD_OPTION_URI_LOG_CALLBACK); the list's entries are the watchdog's. With R <= 0 no
 * thread runs and no deadline moves (connections are listed all the same). */
#ifndef LMA_SERVE_WATCHDOG_H
#define LMA_SERVE_WATCHDOG_H
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include "core/status.h"

typedef struct lma_conn lma_conn; /* one open connection (watchdog.c) */

typedef struct {
    int request_timeout_s;   /* R; <= 0: no deadline */
    FILE *log;               /* the access log (a line per connection cut), or NULL */
    pthread_mutex_t mu;      /* guards conns, the connections' deadlines and stop */
    pthread_cond_t cv;
    lma_conn *conns;         /* the open connections */
    pthread_t thread;
    int on, stop;            /* the thread runs; it is asked to end */
} lma_watchdog;

/* Initialises w (no thread yet). */
void lma_watchdog_init(lma_watchdog *w, int request_timeout_s, FILE *log);
/* Starts the thread when R > 0; LMA_ERR_IO when it cannot start. */
lma_status lma_watchdog_start(lma_watchdog *w);
/* Ends and joins the thread, if it runs (after libmicrohttpd has stopped). */
void lma_watchdog_stop(lma_watchdog *w);
/* Frees w's mutex and condition (the list is empty once libmicrohttpd has stopped). */
void lma_watchdog_destroy(lma_watchdog *w);
/* Sets the deadline of c's connection: at (lma_now() time) 0 none; keep_earlier: only if earlier. */
void lma_watchdog_deadline(lma_watchdog *w, struct MHD_Connection *c, double at, int keep_earlier);
/* MHD_OPTION_NOTIFY_CONNECTION (cls: the watchdog): a connection joins and leaves the list. */
void lma_watchdog_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe);
/* MHD_OPTION_URI_LOG_CALLBACK (cls: the watchdog): the request line is in; returns NULL. */
void *lma_watchdog_on_uri(void *cls, const char *uri, struct MHD_Connection *c);
/* For the access log's lines (server.c's and the watchdog's): the client's address ("-" when
 * unknown) and the time now, UTC ISO 8601, into n bytes. */
void lma_serve_client_addr(struct MHD_Connection *c, char *addr, size_t n);
void lma_serve_utc_now(char *when, size_t n);
#endif
