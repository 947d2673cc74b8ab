/*
 * The replay main() of every fuzz target built with -DWITH_MAIN (librdkafka
 * tests/fuzzers style): runs each file named on the command line through
 * LLVMFuzzerTestOneInput, to reproduce a crash without libFuzzer. Include it
 * last, after the target's LLVMFuzzerTestOneInput.
 */
#ifndef ORDERS_TESTS_FUZZ_REPLAY_MAIN_H
#define ORDERS_TESTS_FUZZ_REPLAY_MAIN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        uint8_t *buf;
        long len;

        if (f == NULL) {
            perror(argv[i]);
            return 1;
        }
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            perror(argv[i]);
            fclose(f);
            return 1;
        }
        /* Exact size, so ASan sees a read one past the end. */
        buf = malloc(len > 0 ? (size_t)len : 1);
        if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
            fprintf(stderr, "%s: read failed\n", argv[i]);
            free(buf);
            fclose(f);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        printf("ok %s (%ld bytes)\n", argv[i], len);
    }
    return 0;
}

#endif
