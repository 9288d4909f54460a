/*
 * libFuzzer target for the C decoder (clang -fsanitize=fuzzer,address,undefined).
 *
 * Every byte string is pushed through a fresh esb_decoder_t; each frame it
 * accepts is parsed by every payload parser, re-encoded with esb_encode() and
 * decoded again, and must come back identical. Any other outcome, and any
 * sanitizer report, is a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "edge_sed_bridge.h"

static void check_frame(const esb_frame_t *frame)
{
    static uint8_t wire[ESB_MAX_WIRE_FRAME];
    static esb_decoder_t again;
    esb_event_t event;
    esb_pcm_t pcm;
    esb_scores_t scores;
    esb_heartbeat_t heartbeat;
    esb_config_t config;
    esb_frame_t copy;
    size_t i;
    size_t n;
    int accepted = 0;
    long checksum = 0;

    accepted += esb_parse_event(frame, &event);
    if (esb_parse_pcm(frame, &pcm)) {
        ++accepted;
        for (i = 0; i < pcm.n_samples; ++i) {
            checksum += esb_pcm_sample(&pcm, i);
        }
    }
    if (esb_parse_scores(frame, &scores)) {
        ++accepted;
        for (i = 0; i < scores.n_classes; ++i) {
            checksum += scores.scores_q8[i];
        }
    }
    accepted += esb_parse_heartbeat(frame, &heartbeat);
    if (esb_parse_config(frame, &config)) {
        ++accepted;
        for (i = 0; i < config.n_entries; ++i) {
            checksum += esb_config_entry(&config, i).on_q16;
        }
    }
    if (accepted != 1 || checksum == -1L) { /* exactly one parser takes a valid frame */
        abort();
    }
    n = esb_encode(frame->type, frame->seq, frame->payload, frame->length, wire, sizeof wire);
    esb_decoder_init(&again);
    for (i = 0; i < n; ++i) {
        if (esb_decoder_push(&again, wire[i], &copy)) {
            if (copy.type != frame->type || copy.seq != frame->seq || copy.length != frame->length ||
                memcmp(copy.payload, frame->payload, frame->length) != 0) {
                abort();
            }
            return;
        }
    }
    abort(); /* the re-encoded frame did not decode */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static esb_decoder_t decoder;
    esb_frame_t frame;
    size_t i;
    esb_decoder_init(&decoder);
    for (i = 0; i < size; ++i) {
        if (esb_decoder_push(&decoder, data[i], &frame)) {
            check_frame(&frame);
        }
    }
    return 0;
}
