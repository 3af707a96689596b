/* The request deadline (slowloris): the open connections, their deadlines and the thread
 * that cuts the late ones (serve/watchdog.h). */
#include "serve/watchdog.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include "core/progress.h" /* lma_now */

/* One TCP connection (libmicrohttpd's socket context), on the watchdog's list while open:
 * the watchdog closes it when its request is not in by its deadline. */
struct lma_conn {
    int fd;
    double deadline;          /* lma_now() by which the request must be in; 0: none (received) */
    int cut;                  /* the watchdog has closed it */
    double opened;
    char addr[48];
    struct lma_conn *prev, *next;
};

void lma_serve_client_addr(struct MHD_Connection *c, char *addr, size_t n) {
    snprintf(addr, n, "-");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, (socklen_t)n);
    else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, (socklen_t)n);
}

void lma_serve_utc_now(char *when, size_t n) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static lma_conn *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void lma_watchdog_deadline(lma_watchdog *w, struct MHD_Connection *c, double at, int keep_earlier) {
    if (w->request_timeout_s <= 0) return;
    pthread_mutex_lock(&w->mu);
    lma_conn *k = conn_of(c);
    if (k && !(keep_earlier && k->deadline && k->deadline < at)) k->deadline = at;
    pthread_mutex_unlock(&w->mu);
}

void lma_watchdog_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                                enum MHD_ConnectionNotificationCode toe) {
    lma_watchdog *w = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        lma_conn *k = calloc(1, sizeof *k);
        if (!k) return; /* without a deadline (out of memory) */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        k->opened = lma_now();
        k->deadline = k->opened + w->request_timeout_s;
        lma_serve_client_addr(c, k->addr, sizeof k->addr);
        pthread_mutex_lock(&w->mu);
        k->next = w->conns;
        if (w->conns) w->conns->prev = k;
        w->conns = k;
        *socket_context = k;
        pthread_mutex_unlock(&w->mu);
    } else if (*socket_context) {
        lma_conn *k = *socket_context;
        pthread_mutex_lock(&w->mu);
        if (k->prev) k->prev->next = k->next; else w->conns = k->next;
        if (k->next) k->next->prev = k->prev;
        *socket_context = NULL;
        pthread_mutex_unlock(&w->mu);
        free(k);
    }
}

void *lma_watchdog_on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
    lma_watchdog *w = cls;
    (void)uri;
    lma_watchdog_deadline(w, c, lma_now() + w->request_timeout_s, 1);
    return NULL;
}

static void *watchdog_main(void *arg) {
    lma_watchdog *w = arg;
    static const char body[] = "{\"error\":{\"message\":\"the request was not received in time\","
                               "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"request_timeout\"}}";
    char reply[320];
    int len = snprintf(reply, sizeof reply, "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof body - 1, body);
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        double now = lma_now();
        for (lma_conn *k = w->conns; k; k = k->next) {
            if (k->cut || !k->deadline || now < k->deadline || k->fd < 0) continue;
            k->cut = 1;
            /* nothing of a response is being written: the request is not in (or the last
             * response was sent whole) */
            if (send(k->fd, reply, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { /* best effort */ }
            shutdown(k->fd, SHUT_RDWR);
            if (w->log) {
                char when[32];
                lma_serve_utc_now(when, sizeof when);
                fprintf(w->log, "%s %s \"- -\" 408 %.0fms request not received within %d s: connection closed\n",
                        when, k->addr, (now - k->opened) * 1e3, w->request_timeout_s);
                fflush(w->log);
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

void lma_watchdog_init(lma_watchdog *w, int request_timeout_s, FILE *log) {
    *w = (lma_watchdog){.request_timeout_s = request_timeout_s, .log = log};
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

lma_status lma_watchdog_start(lma_watchdog *w) {
    if (w->request_timeout_s <= 0) return LMA_OK;
    if (pthread_create(&w->thread, NULL, watchdog_main, w) != 0)
        return lma_error(LMA_ERR_IO, "cannot start the request watchdog thread");
    w->on = 1;
    return LMA_OK;
}

void lma_watchdog_stop(lma_watchdog *w) {
    if (!w->on) return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->on = 0;
}

void lma_watchdog_destroy(lma_watchdog *w) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}
