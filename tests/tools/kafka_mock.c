/*
 * A librdkafka mock cluster (rdkafka_mock.h) in a process of its own, so the
 * relay under test can be killed and restarted against the same "broker",
 * and faults can be injected from a test script. Prints
 * "bootstrap=HOST:PORT,..." then reads one command per line on stdin and
 * answers "ok" or "error ...":
 *   topic NAME PARTITIONS        create a topic
 *   down BROKER | up BROKER      disconnect / accept again (-1: all)
 *   rtt BROKER MS                add latency
 *   produce-errors ERR [ERR...]  fail the next Produce requests with these codes
 *   quit
 * Test-only: the mock API is experimental and stays out of the product.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define PRODUCE_API_KEY 0

int main(int argc, char **argv)
{
    int nbrokers = argc > 1 ? atoi(argv[1]) : 1;
    char errstr[512], line[1024];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        return 1;
    }
    mc = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (mc == NULL) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        return 1;
    }
    printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char name[256];
        int a = 0, b = 0;
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

        line[strcspn(line, "\r\n")] = '\0';
        if (strcmp(line, "quit") == 0)
            break;
        if (sscanf(line, "topic %255s %d", name, &a) == 2) {
            err = rd_kafka_mock_topic_create(mc, name, a, 1);
        } else if (sscanf(line, "down %d", &a) == 1) {
            err = rd_kafka_mock_broker_set_down(mc, a);
        } else if (sscanf(line, "up %d", &a) == 1) {
            err = rd_kafka_mock_broker_set_up(mc, a);
        } else if (sscanf(line, "rtt %d %d", &a, &b) == 2) {
            err = rd_kafka_mock_broker_set_rtt(mc, a, b);
        } else if (strncmp(line, "produce-errors ", 15) == 0) {
            rd_kafka_resp_err_t errs[64];
            size_t n = 0;
            char *tok = strtok(line + 15, " ");

            while (tok != NULL && n < 64) {
                errs[n++] = (rd_kafka_resp_err_t)atoi(tok);
                tok = strtok(NULL, " ");
            }
            rd_kafka_mock_push_request_errors_array(mc, PRODUCE_API_KEY, n, errs);
        } else {
            printf("error unknown command: %s\n", line);
            fflush(stdout);
            continue;
        }
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            printf("error %s\n", rd_kafka_err2str(err));
        else
            printf("ok\n");
        fflush(stdout);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
