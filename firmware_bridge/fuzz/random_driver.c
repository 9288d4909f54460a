/*
 * A long random run of the C decoder without libFuzzer (gcc or clang, with
 * -fsanitize=address,undefined): random_driver N [SEED].
 *
 * Each of the N inputs goes through LLVMFuzzerTestOneInput (fuzz_decoder.c)
 * and is one of four kinds, in turn:
 *   0  random bytes (lengths up to 2.5 frames, zeros more frequent);
 *   1  valid frames of random types with random mutations (flips, inserted,
 *      deleted and truncated bytes); first, the same frame encoded into a
 *      buffer too short for it must fail without writing past the buffer;
 *   2  valid frames with runs of random garbage between them: every frame
 *      must be recovered;
 *   3  one valid frame with one byte replaced: no frame may be accepted.
 * Prints one JSON line (inputs, bytes, frames, property failures); exits 1 if
 * a property failed. Sanitizer reports abort the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_sed_bridge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (4u * ESB_MAX_WIRE_FRAME)
#define MAX_FRAMES_PER_INPUT 3u

static uint64_t rng_state;

static uint32_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static uint32_t below(uint32_t n) { return n ? next_random() % n : 0; }

/* Append one valid frame of a random type and size at out; return its length. */
static size_t random_frame(uint8_t *out, size_t cap, uint16_t seq)
{
    static uint8_t payload[ESB_MAX_PAYLOAD];
    static int16_t samples[ESB_PCM_MAX_SAMPLES];
    static esb_threshold_t entries[ESB_CONFIG_MAX_ENTRIES];
    size_t i;
    switch (below(5)) {
    case 0: {
        esb_event_t event;
        event.kind = (uint8_t)below(2);
        event.class_id = (uint16_t)next_random();
        event.confidence_q16 = (uint16_t)next_random();
        event.timestamp_ms = next_random();
        event.duration_ms = next_random();
        return esb_encode_event(&event, seq, out, cap);
    }
    case 1: {
        size_t n = 1 + below(ESB_PCM_MAX_SAMPLES);
        for (i = 0; i < n; ++i) {
            samples[i] = (int16_t)(below(65536) - 32768L);
        }
        return esb_encode_pcm(1 + next_random(), next_random(), samples, n, seq, out, cap);
    }
    case 2: {
        size_t n = below(ESB_SCORES_MAX_CLASSES + 1);
        for (i = 0; i < n; ++i) {
            payload[i] = (uint8_t)next_random();
        }
        return esb_encode_scores(next_random(), payload, n, seq, out, cap);
    }
    case 3: {
        esb_heartbeat_t heartbeat;
        heartbeat.uptime_ms = next_random();
        heartbeat.rx_frames = next_random();
        heartbeat.rx_errors = next_random();
        heartbeat.overruns = next_random();
        return esb_encode_heartbeat(&heartbeat, seq, out, cap);
    }
    default: {
        size_t n = below(ESB_CONFIG_MAX_ENTRIES + 1);
        for (i = 0; i < n; ++i) {
            entries[i].class_id = (uint16_t)next_random();
            entries[i].on_q16 = (uint16_t)next_random();
            entries[i].off_q16 = (uint16_t)next_random();
        }
        return esb_encode_config(entries, n, seq, out, cap);
    }
    }
}

/* Encoding the same frame into a buffer one or more bytes short must fail without writing past it
   (a heap buffer of exactly that size, so that AddressSanitizer sees any overflow). */
static unsigned long short_buffer_fails(size_t needed, uint64_t frame_state, uint16_t seq)
{
    size_t cap = needed - 1u - below((uint32_t)needed);
    uint64_t next_state = rng_state;
    uint8_t *out = (uint8_t *)malloc(cap ? cap : 1u);
    size_t written;
    if (out == NULL) {
        return 1;
    }
    rng_state = frame_state; /* the same random frame again */
    written = random_frame(out, cap, seq);
    rng_state = next_state;
    free(out);
    if (written != 0) {
        fprintf(stderr, "property failed: a %lu-byte frame encoded into %lu bytes\n", (unsigned long)needed,
                (unsigned long)cap);
        return 1;
    }
    return 0;
}

static size_t random_bytes(uint8_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        out[i] = below(8) == 0 ? 0 : (uint8_t)next_random();
    }
    return n;
}

static size_t mutate(uint8_t *data, size_t size, size_t cap)
{
    uint32_t edits = 1 + below(4);
    while (edits-- > 0 && size > 0) {
        size_t at = below((uint32_t)size);
        switch (below(4)) {
        case 0:
            data[at] ^= (uint8_t)(1u << below(8));
            break;
        case 1:
            if (size < cap) {
                memmove(data + at + 1, data + at, size - at);
                data[at] = (uint8_t)next_random();
                ++size;
            }
            break;
        case 2:
            memmove(data + at, data + at + 1, size - at - 1);
            --size;
            break;
        default:
            size = at;
            break;
        }
    }
    return size;
}

static uint32_t count_frames(const uint8_t *data, size_t size, esb_decoder_t *decoder)
{
    esb_frame_t frame;
    uint32_t frames = 0;
    size_t i;
    esb_decoder_init(decoder);
    for (i = 0; i < size; ++i) {
        frames += (uint32_t)esb_decoder_push(decoder, data[i], &frame);
    }
    return frames;
}

int main(int argc, char **argv)
{
    static uint8_t input[MAX_INPUT];
    static esb_decoder_t decoder;
    unsigned long n_inputs = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000ul;
    unsigned long seed = argc > 2 ? strtoul(argv[2], NULL, 10) : 1ul;
    unsigned long i;
    unsigned long long total_bytes = 0;
    unsigned long frames = 0;
    unsigned long failures = 0;
    rng_state = 0x9E3779B97F4A7C15ull ^ (uint64_t)seed;
    for (i = 0; i < n_inputs; ++i) {
        size_t size = 0;
        uint32_t expected = 0;
        uint32_t got;
        unsigned kind = (unsigned)(i % 4u);
        if (kind == 0) {
            size = random_bytes(input, below((uint32_t)(ESB_MAX_WIRE_FRAME * 5u / 2u)));
        } else if (kind == 1) {
            uint64_t frame_state = rng_state;
            size = random_frame(input, MAX_INPUT, (uint16_t)i);
            failures += short_buffer_fails(size, frame_state, (uint16_t)i);
            size = mutate(input, size, MAX_INPUT);
        } else if (kind == 2) {
            uint32_t k;
            uint32_t n_frames = 1 + below(MAX_FRAMES_PER_INPUT);
            for (k = 0; k < n_frames && size + ESB_MAX_WIRE_FRAME + 64u <= MAX_INPUT; ++k) {
                size += random_bytes(input + size, below(64));
                size += random_frame(input + size, MAX_INPUT - size, (uint16_t)k);
                ++expected;
            }
        } else {
            size_t at;
            uint8_t old;
            size = random_frame(input, MAX_INPUT, (uint16_t)i);
            at = 1 + below((uint32_t)size - 2u); /* any byte between the delimiters */
            old = input[at];
            input[at] = (uint8_t)(old + 1u + below(255));
        }
        LLVMFuzzerTestOneInput(input, size);
        total_bytes += size;
        got = count_frames(input, size, &decoder);
        frames += got;
        if ((kind == 2 && got != expected) || (kind == 3 && got != 0)) {
            ++failures;
            fprintf(stderr, "property failed: input %lu (kind %u): %lu frames, expected %lu\n", i, kind,
                    (unsigned long)got, (unsigned long)expected);
        }
    }
    printf("{\"inputs\": %lu, \"bytes\": %llu, \"frames_decoded\": %lu, \"property_failures\": %lu, \"seed\": %lu}\n",
           n_inputs, total_bytes, frames, failures, seed);
    return failures ? 1 : 0;
}
