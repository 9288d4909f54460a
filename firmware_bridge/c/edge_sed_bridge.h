/*
 * edge_sed_bridge: the edge-sed firmware bridge wire protocol, version 1, for
 * microcontrollers (C99, no dynamic memory, caller-provided buffers).
 *
 * firmware_bridge/PROTOCOL.md is the specification; firmware_bridge/protocol.py
 * is the host side. A frame on the wire is
 *
 *     00 | COBS(header | payload | CRC-32) | 00
 *
 * header = version u8, type u8, sequence u16, payload length u16 (little-endian);
 * CRC-32 = IEEE 802.3 (reflected 0xEDB88320, init and xorout 0xFFFFFFFF) of
 * header and payload, stored little-endian.
 *
 * Encoding: esb_encode_event(), esb_encode_pcm(), ... write one whole frame
 * (both delimiters) into `out` and return its length, or 0 if `cap` is too
 * small or a field is out of range. ESB_MAX_WIRE_FRAME bytes always suffice.
 *
 * Decoding: an esb_decoder_t (about 1.1 KB) takes one byte at a time
 * (esb_decoder_push(), e.g. from a UART interrupt) and reports each valid frame;
 * bad frames are counted in decoder.counters and skipped, never fatal, and
 * decoding resumes at the next 0x00.
 */
#ifndef EDGE_SED_BRIDGE_H
#define EDGE_SED_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ESB_PROTOCOL_VERSION 1u
#define ESB_HEADER_SIZE 6u
#define ESB_CRC_SIZE 4u
/* Largest payload of one frame. */
#define ESB_MAX_PAYLOAD 1024u
/* Largest frame before COBS (header, payload, CRC). */
#define ESB_MAX_FRAME (ESB_HEADER_SIZE + ESB_MAX_PAYLOAD + ESB_CRC_SIZE)
/* Largest COBS-encoded frame, delimiters excluded. */
#define ESB_MAX_ENCODED (ESB_MAX_FRAME + (ESB_MAX_FRAME + 253u) / 254u)
/* Largest frame on the wire, both 0x00 delimiters included. */
#define ESB_MAX_WIRE_FRAME (ESB_MAX_ENCODED + 2u)

#define ESB_EVENT_PAYLOAD_SIZE 14u
#define ESB_HEARTBEAT_PAYLOAD_SIZE 16u
#define ESB_PCM_HEADER_SIZE 8u
#define ESB_PCM_MAX_SAMPLES ((ESB_MAX_PAYLOAD - ESB_PCM_HEADER_SIZE) / 2u)
#define ESB_SCORES_HEADER_SIZE 6u
#define ESB_SCORES_MAX_CLASSES (ESB_MAX_PAYLOAD - ESB_SCORES_HEADER_SIZE)
#define ESB_CONFIG_ENTRY_SIZE 6u
#define ESB_CONFIG_MAX_ENTRIES ((ESB_MAX_PAYLOAD - 2u) / ESB_CONFIG_ENTRY_SIZE)
/* Class id of an EVENT whose label the sender does not know. */
#define ESB_CLASS_UNKNOWN 0xFFFFu

typedef enum {
    ESB_EVENT = 1,
    ESB_SCORES = 2,
    ESB_PCM = 3,
    ESB_HEARTBEAT = 4,
    ESB_CONFIG = 5
} esb_type_t;

typedef enum { ESB_ONSET = 0, ESB_OFFSET = 1 } esb_event_kind_t;

/* EVENT: confidence = confidence_q16 / 65535; times in ms of stream time. */
typedef struct {
    uint8_t kind; /* esb_event_kind_t */
    uint16_t class_id;
    uint16_t confidence_q16;
    uint32_t timestamp_ms;
    uint32_t duration_ms; /* offsets only: the event began this long before timestamp_ms */
} esb_event_t;

/* PCM: little-endian int16 samples; read them with esb_pcm_sample(). */
typedef struct {
    uint32_t sample_rate;
    uint32_t first_sample; /* stream index of the first sample, wrapping at 2^32 */
    uint16_t n_samples;
    const uint8_t *data; /* points into the decoder's buffer when parsed */
} esb_pcm_t;

/* SCORES: score = scores_q8[i] / 255. */
typedef struct {
    uint32_t timestamp_ms;
    uint16_t n_classes;
    const uint8_t *scores_q8;
} esb_scores_t;

typedef struct {
    uint32_t uptime_ms;
    uint32_t rx_frames;
    uint32_t rx_errors;
    uint32_t overruns;
} esb_heartbeat_t;

/* CONFIG: n_entries records of (class_id u16, on_q16 u16, off_q16 u16); read with esb_config_entry(). */
typedef struct {
    uint16_t n_entries;
    const uint8_t *entries;
} esb_config_t;

typedef struct {
    uint16_t class_id;
    uint16_t on_q16;
    uint16_t off_q16;
} esb_threshold_t;

/* One valid frame: its header fields and payload (valid until the next push). */
typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t length;
    const uint8_t *payload;
} esb_frame_t;

typedef struct {
    uint32_t frames;       /* valid frames delivered */
    uint32_t bad_crc;      /* CRC mismatch */
    uint32_t truncated;    /* fewer bytes than the header (or the length field) needs */
    uint32_t oversized;    /* no delimiter within ESB_MAX_ENCODED bytes, or length > ESB_MAX_PAYLOAD */
    uint32_t unknown_type; /* valid CRC, unknown type byte */
    uint32_t garbage;      /* not COBS, or more bytes than the length field says */
    uint32_t bad_version;  /* valid CRC, version other than ESB_PROTOCOL_VERSION */
    uint32_t bad_payload;  /* valid CRC, payload not of its type's shape */
    uint32_t lost;         /* frames missing from the sender's sequence numbers */
} esb_counters_t;

typedef struct {
    uint8_t buffer[ESB_MAX_ENCODED];
    size_t length;
    int discarding;
    int have_seq;
    uint16_t next_seq;
    esb_counters_t counters;
} esb_decoder_t;

/* CRC-32 (IEEE) of len bytes; esb_crc32(data, 9) of "123456789" is 0xCBF43926. */
uint32_t esb_crc32(const uint8_t *data, size_t len);

/* Encoders: return the frame's length in out (delimiters included), 0 on failure. */
size_t esb_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t length, uint8_t *out, size_t cap);
size_t esb_encode_event(const esb_event_t *event, uint16_t seq, uint8_t *out, size_t cap);
size_t esb_encode_pcm(uint32_t sample_rate, uint32_t first_sample, const int16_t *samples, size_t n_samples,
                      uint16_t seq, uint8_t *out, size_t cap);
size_t esb_encode_scores(uint32_t timestamp_ms, const uint8_t *scores_q8, size_t n_classes, uint16_t seq,
                         uint8_t *out, size_t cap);
size_t esb_encode_heartbeat(const esb_heartbeat_t *heartbeat, uint16_t seq, uint8_t *out, size_t cap);
size_t esb_encode_config(const esb_threshold_t *entries, size_t n_entries, uint16_t seq, uint8_t *out, size_t cap);

/* Streaming decoder. */
void esb_decoder_init(esb_decoder_t *decoder);
/* Take one byte; return 1 and fill *frame when it completes a valid frame, else 0. */
int esb_decoder_push(esb_decoder_t *decoder, uint8_t byte, esb_frame_t *frame);
/* Sum of the error counters (everything but frames and lost). */
uint32_t esb_counters_errors(const esb_counters_t *counters);

/* Payload parsers: return 1 and fill *out if frame is of that type and shape, else 0. */
int esb_parse_event(const esb_frame_t *frame, esb_event_t *out);
int esb_parse_pcm(const esb_frame_t *frame, esb_pcm_t *out);
int esb_parse_scores(const esb_frame_t *frame, esb_scores_t *out);
int esb_parse_heartbeat(const esb_frame_t *frame, esb_heartbeat_t *out);
int esb_parse_config(const esb_frame_t *frame, esb_config_t *out);
int16_t esb_pcm_sample(const esb_pcm_t *pcm, size_t index);
esb_threshold_t esb_config_entry(const esb_config_t *config, size_t index);

#ifdef __cplusplus
}
#endif

#endif /* EDGE_SED_BRIDGE_H */
