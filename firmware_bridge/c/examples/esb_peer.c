/*
 * esb_peer: a stand-in for firmware, on stdin/stdout (e.g. a serial line or a pty).
 *
 *   esb_peer echo      decode every frame read; re-encode each valid one with this
 *                      library's typed encoders and write it back
 *   esb_peer emit N    write N PCM frames (160 samples each, a fixed ramp) and an
 *                      onset/offset EVENT pair after every 10th
 *   esb_peer count     decode stdin to its end, write nothing back
 *
 * At the end of input every mode prints the decoder's counters as one JSON line
 * on stderr (echo, emit) or stdout (count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_sed_bridge.h"

#define PEER_PCM_SAMPLES 160u
#define PEER_PCM_RATE 16000u
#define PEER_EVENT_EVERY 10u

static uint8_t wire[ESB_MAX_WIRE_FRAME];
static uint16_t seq;

static void send_frame(size_t length)
{
    if (length == 0) {
        fprintf(stderr, "esb_peer: encoding failed\n");
        exit(2);
    }
    fwrite(wire, 1, length, stdout);
    fflush(stdout);
    ++seq;
}

static size_t reencode(const esb_frame_t *frame)
{
    static int16_t samples[ESB_PCM_MAX_SAMPLES];
    static esb_threshold_t thresholds[ESB_CONFIG_MAX_ENTRIES];
    esb_event_t event;
    esb_pcm_t pcm;
    esb_scores_t scores;
    esb_heartbeat_t heartbeat;
    esb_config_t config;
    size_t i;
    if (esb_parse_event(frame, &event)) {
        return esb_encode_event(&event, seq, wire, sizeof wire);
    }
    if (esb_parse_pcm(frame, &pcm)) {
        for (i = 0; i < pcm.n_samples; ++i) {
            samples[i] = esb_pcm_sample(&pcm, i);
        }
        return esb_encode_pcm(pcm.sample_rate, pcm.first_sample, samples, pcm.n_samples, seq, wire, sizeof wire);
    }
    if (esb_parse_scores(frame, &scores)) {
        return esb_encode_scores(scores.timestamp_ms, scores.scores_q8, scores.n_classes, seq, wire, sizeof wire);
    }
    if (esb_parse_heartbeat(frame, &heartbeat)) {
        return esb_encode_heartbeat(&heartbeat, seq, wire, sizeof wire);
    }
    if (esb_parse_config(frame, &config)) {
        for (i = 0; i < config.n_entries; ++i) {
            thresholds[i] = esb_config_entry(&config, i);
        }
        return esb_encode_config(thresholds, config.n_entries, seq, wire, sizeof wire);
    }
    return 0;
}

static void print_counters(FILE *out, const esb_counters_t *c)
{
    fprintf(out,
            "{\"frames\": %lu, \"bad_crc\": %lu, \"truncated\": %lu, \"oversized\": %lu, "
            "\"unknown_type\": %lu, \"garbage\": %lu, \"bad_version\": %lu, \"bad_payload\": %lu, "
            "\"lost\": %lu}\n",
            (unsigned long)c->frames, (unsigned long)c->bad_crc, (unsigned long)c->truncated,
            (unsigned long)c->oversized, (unsigned long)c->unknown_type, (unsigned long)c->garbage,
            (unsigned long)c->bad_version, (unsigned long)c->bad_payload, (unsigned long)c->lost);
    fflush(out);
}

static void decode_stdin(int echo)
{
    static esb_decoder_t decoder;
    esb_frame_t frame;
    int ch;
    esb_decoder_init(&decoder);
    while ((ch = getchar()) != EOF) {
        if (esb_decoder_push(&decoder, (uint8_t)ch, &frame) && echo) {
            send_frame(reencode(&frame));
        }
    }
    print_counters(echo ? stderr : stdout, &decoder.counters);
}

/* The ramp the tests expect: sample k of the stream is (k * 37) mod 65536, as int16. */
static int16_t ramp_sample(uint32_t k)
{
    uint16_t raw = (uint16_t)((k * 37u) & 0xFFFFu);
    return (int16_t)(raw >= 0x8000u ? (long)raw - 0x10000L : (long)raw);
}

static void emit(unsigned long n_frames)
{
    int16_t samples[PEER_PCM_SAMPLES];
    unsigned long i;
    size_t k;
    for (i = 0; i < n_frames; ++i) {
        uint32_t first = (uint32_t)(i * PEER_PCM_SAMPLES);
        for (k = 0; k < PEER_PCM_SAMPLES; ++k) {
            samples[k] = ramp_sample(first + (uint32_t)k);
        }
        send_frame(esb_encode_pcm(PEER_PCM_RATE, first, samples, PEER_PCM_SAMPLES, seq, wire, sizeof wire));
        if (i % PEER_EVENT_EVERY == PEER_EVENT_EVERY - 1u) {
            esb_event_t event;
            event.kind = ESB_ONSET;
            event.class_id = (uint16_t)(i / PEER_EVENT_EVERY);
            event.confidence_q16 = 50000u;
            event.timestamp_ms = (uint32_t)(i * 10u);
            event.duration_ms = 0;
            send_frame(esb_encode_event(&event, seq, wire, sizeof wire));
            event.kind = ESB_OFFSET;
            event.timestamp_ms += 500u;
            event.duration_ms = 500u;
            send_frame(esb_encode_event(&event, seq, wire, sizeof wire));
        }
    }
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "echo") == 0) {
        decode_stdin(1);
    } else if (argc >= 2 && strcmp(argv[1], "count") == 0) {
        decode_stdin(0);
    } else if (argc >= 3 && strcmp(argv[1], "emit") == 0) {
        emit(strtoul(argv[2], NULL, 10));
    } else {
        fprintf(stderr, "usage: esb_peer echo | count | emit N\n");
        return 2;
    }
    return 0;
}
