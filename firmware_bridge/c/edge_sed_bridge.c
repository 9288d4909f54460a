/* edge_sed_bridge: see edge_sed_bridge.h and firmware_bridge/PROTOCOL.md. */
#include "edge_sed_bridge.h"

#define ESB_CRC32_POLY_REFLECTED 0xEDB88320u
#define ESB_COBS_MAX_CODE 0xFFu
#define ESB_SEQ_HALF 0x8000u

/* ---- little-endian helpers ---------------------------------------------- */

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- CRC-32 -------------------------------------------------------------- */

static uint32_t crc32_update(uint32_t crc, uint8_t byte)
{
    int bit;
    crc ^= byte;
    for (bit = 0; bit < 8; ++bit) {
        crc = (crc >> 1) ^ (ESB_CRC32_POLY_REFLECTED & (0u - (crc & 1u)));
    }
    return crc;
}

uint32_t esb_crc32(const uint8_t *data, size_t len)
{
    uint32_t crc = 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < len; ++i) {
        crc = crc32_update(crc, data[i]);
    }
    return crc ^ 0xFFFFFFFFu;
}

/* ---- streaming COBS encoder: bytes go straight into the output frame ------ */

typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos;
    size_t code_at;
    uint8_t code;
    uint32_t crc;
    int overflow;
} esb_writer_t;

static void writer_start(esb_writer_t *w, uint8_t *out, size_t cap)
{
    w->out = out;
    w->cap = cap;
    w->overflow = cap < 3u;
    w->crc = 0xFFFFFFFFu;
    if (w->overflow) {
        return;
    }
    out[0] = 0x00; /* leading delimiter: ends any line noise before this frame */
    w->code_at = 1;
    w->pos = 2;
    w->code = 1;
}

static void writer_cobs(esb_writer_t *w, uint8_t byte)
{
    if (w->overflow) {
        return;
    }
    if (w->code == ESB_COBS_MAX_CODE) { /* a full run of 254: close it, open the next */
        w->out[w->code_at] = ESB_COBS_MAX_CODE;
        w->code_at = w->pos++;
        w->code = 1;
    }
    if (w->pos >= w->cap) {
        w->overflow = 1;
        return;
    }
    if (byte == 0) {
        w->out[w->code_at] = w->code;
        w->code_at = w->pos++;
        w->code = 1;
    } else {
        w->out[w->pos++] = byte;
        ++w->code;
    }
}

static void put_u8(esb_writer_t *w, uint8_t value)
{
    w->crc = crc32_update(w->crc, value);
    writer_cobs(w, value);
}

static void put_u16(esb_writer_t *w, uint16_t value)
{
    put_u8(w, (uint8_t)(value & 0xFFu));
    put_u8(w, (uint8_t)(value >> 8));
}

static void put_u32(esb_writer_t *w, uint32_t value)
{
    put_u16(w, (uint16_t)(value & 0xFFFFu));
    put_u16(w, (uint16_t)(value >> 16));
}

static void put_header(esb_writer_t *w, uint8_t type, uint16_t seq, size_t length)
{
    put_u8(w, ESB_PROTOCOL_VERSION);
    put_u8(w, type);
    put_u16(w, seq);
    put_u16(w, (uint16_t)length);
}

static size_t writer_finish(esb_writer_t *w)
{
    uint32_t crc = w->crc ^ 0xFFFFFFFFu;
    int i;
    for (i = 0; i < 4; ++i) {
        writer_cobs(w, (uint8_t)(crc >> (8 * i)));
    }
    if (w->overflow || w->pos >= w->cap) {
        return 0;
    }
    w->out[w->code_at] = w->code;
    w->out[w->pos++] = 0x00;
    return w->pos;
}

size_t esb_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t length, uint8_t *out, size_t cap)
{
    esb_writer_t w;
    size_t i;
    if (length > ESB_MAX_PAYLOAD || (payload == NULL && length > 0)) {
        return 0;
    }
    writer_start(&w, out, cap);
    put_header(&w, type, seq, length);
    for (i = 0; i < length; ++i) {
        put_u8(&w, payload[i]);
    }
    return writer_finish(&w);
}

size_t esb_encode_event(const esb_event_t *event, uint16_t seq, uint8_t *out, size_t cap)
{
    esb_writer_t w;
    if (event->kind > ESB_OFFSET) {
        return 0;
    }
    writer_start(&w, out, cap);
    put_header(&w, ESB_EVENT, seq, ESB_EVENT_PAYLOAD_SIZE);
    put_u8(&w, event->kind);
    put_u8(&w, 0); /* flags, reserved */
    put_u16(&w, event->class_id);
    put_u16(&w, event->confidence_q16);
    put_u32(&w, event->timestamp_ms);
    put_u32(&w, event->duration_ms);
    return writer_finish(&w);
}

size_t esb_encode_pcm(uint32_t sample_rate, uint32_t first_sample, const int16_t *samples, size_t n_samples,
                      uint16_t seq, uint8_t *out, size_t cap)
{
    esb_writer_t w;
    size_t i;
    if (n_samples == 0 || n_samples > ESB_PCM_MAX_SAMPLES || sample_rate == 0) {
        return 0;
    }
    writer_start(&w, out, cap);
    put_header(&w, ESB_PCM, seq, ESB_PCM_HEADER_SIZE + 2u * n_samples);
    put_u32(&w, sample_rate);
    put_u32(&w, first_sample);
    for (i = 0; i < n_samples; ++i) {
        put_u16(&w, (uint16_t)samples[i]);
    }
    return writer_finish(&w);
}

size_t esb_encode_scores(uint32_t timestamp_ms, const uint8_t *scores_q8, size_t n_classes, uint16_t seq,
                         uint8_t *out, size_t cap)
{
    esb_writer_t w;
    size_t i;
    if (n_classes > ESB_SCORES_MAX_CLASSES) {
        return 0;
    }
    writer_start(&w, out, cap);
    put_header(&w, ESB_SCORES, seq, ESB_SCORES_HEADER_SIZE + n_classes);
    put_u32(&w, timestamp_ms);
    put_u16(&w, (uint16_t)n_classes);
    for (i = 0; i < n_classes; ++i) {
        put_u8(&w, scores_q8[i]);
    }
    return writer_finish(&w);
}

size_t esb_encode_heartbeat(const esb_heartbeat_t *heartbeat, uint16_t seq, uint8_t *out, size_t cap)
{
    esb_writer_t w;
    writer_start(&w, out, cap);
    put_header(&w, ESB_HEARTBEAT, seq, ESB_HEARTBEAT_PAYLOAD_SIZE);
    put_u32(&w, heartbeat->uptime_ms);
    put_u32(&w, heartbeat->rx_frames);
    put_u32(&w, heartbeat->rx_errors);
    put_u32(&w, heartbeat->overruns);
    return writer_finish(&w);
}

size_t esb_encode_config(const esb_threshold_t *entries, size_t n_entries, uint16_t seq, uint8_t *out, size_t cap)
{
    esb_writer_t w;
    size_t i;
    if (n_entries > ESB_CONFIG_MAX_ENTRIES) {
        return 0;
    }
    writer_start(&w, out, cap);
    put_header(&w, ESB_CONFIG, seq, 2u + ESB_CONFIG_ENTRY_SIZE * n_entries);
    put_u16(&w, (uint16_t)n_entries);
    for (i = 0; i < n_entries; ++i) {
        put_u16(&w, entries[i].class_id);
        put_u16(&w, entries[i].on_q16);
        put_u16(&w, entries[i].off_q16);
    }
    return writer_finish(&w);
}

/* ---- decoder ------------------------------------------------------------- */

void esb_decoder_init(esb_decoder_t *decoder)
{
    esb_counters_t zero = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    decoder->length = 0;
    decoder->discarding = 0;
    decoder->have_seq = 0;
    decoder->next_seq = 0;
    decoder->counters = zero;
}

uint32_t esb_counters_errors(const esb_counters_t *c)
{
    return c->bad_crc + c->truncated + c->oversized + c->unknown_type + c->garbage + c->bad_version +
           c->bad_payload;
}

/* COBS-decode buf[0..len) in place; return the decoded length, or -1 if it is not COBS. */
static long cobs_decode_in_place(uint8_t *buf, size_t len)
{
    size_t read = 0;
    size_t write = 0;
    while (read < len) {
        uint8_t code = buf[read++];
        size_t i;
        if (code == 0 || read + code - 1u > len) {
            return -1;
        }
        for (i = 1; i < code; ++i) {
            buf[write++] = buf[read++];
        }
        if (code != ESB_COBS_MAX_CODE && read < len) {
            buf[write++] = 0x00;
        }
    }
    return (long)write;
}

static int payload_shape_ok(uint8_t type, const uint8_t *payload, size_t length)
{
    switch (type) {
    case ESB_EVENT:
        return length == ESB_EVENT_PAYLOAD_SIZE && payload[0] <= ESB_OFFSET;
    case ESB_SCORES:
        return length >= ESB_SCORES_HEADER_SIZE && get_u16(payload + 4) == length - ESB_SCORES_HEADER_SIZE;
    case ESB_PCM:
        return length >= ESB_PCM_HEADER_SIZE + 2u && (length - ESB_PCM_HEADER_SIZE) % 2u == 0 &&
               get_u32(payload) != 0;
    case ESB_HEARTBEAT:
        return length == ESB_HEARTBEAT_PAYLOAD_SIZE;
    case ESB_CONFIG:
        return length >= 2u && length == 2u + ESB_CONFIG_ENTRY_SIZE * (size_t)get_u16(payload);
    default:
        return 0;
    }
}

static int is_known_type(uint8_t type) { return type >= ESB_EVENT && type <= ESB_CONFIG; }

/* Classify the frame in decoder->buffer; return 1 and fill *frame if it is valid. */
static int finish_frame(esb_decoder_t *d, esb_frame_t *frame)
{
    esb_counters_t *c = &d->counters;
    long decoded = cobs_decode_in_place(d->buffer, d->length);
    size_t n;
    uint16_t length;
    uint16_t seq;
    d->length = 0;
    if (decoded < 0) {
        ++c->garbage;
        return 0;
    }
    n = (size_t)decoded;
    if (n < ESB_HEADER_SIZE + ESB_CRC_SIZE) {
        ++c->truncated;
        return 0;
    }
    length = get_u16(d->buffer + 4);
    if (length > ESB_MAX_PAYLOAD) {
        ++c->oversized;
        return 0;
    }
    if (n != ESB_HEADER_SIZE + (size_t)length + ESB_CRC_SIZE) {
        if (n < ESB_HEADER_SIZE + (size_t)length + ESB_CRC_SIZE) {
            ++c->truncated;
        } else {
            ++c->garbage;
        }
        return 0;
    }
    if (esb_crc32(d->buffer, n - ESB_CRC_SIZE) != get_u32(d->buffer + n - ESB_CRC_SIZE)) {
        ++c->bad_crc;
        return 0;
    }
    if (d->buffer[0] != ESB_PROTOCOL_VERSION) {
        ++c->bad_version;
        return 0;
    }
    if (!is_known_type(d->buffer[1])) {
        ++c->unknown_type;
        return 0;
    }
    if (!payload_shape_ok(d->buffer[1], d->buffer + ESB_HEADER_SIZE, length)) {
        ++c->bad_payload;
        return 0;
    }
    seq = get_u16(d->buffer + 2);
    if (d->have_seq) {
        uint16_t gap = (uint16_t)(seq - d->next_seq);
        if (gap < ESB_SEQ_HALF) {
            c->lost += gap;
        }
    }
    d->have_seq = 1;
    d->next_seq = (uint16_t)(seq + 1u);
    ++c->frames;
    frame->type = d->buffer[1];
    frame->seq = seq;
    frame->length = length;
    frame->payload = d->buffer + ESB_HEADER_SIZE;
    return 1;
}

int esb_decoder_push(esb_decoder_t *d, uint8_t byte, esb_frame_t *frame)
{
    if (byte == 0x00) {
        if (d->discarding) {
            d->discarding = 0;
            return 0;
        }
        if (d->length == 0) { /* idle line or back-to-back delimiters */
            return 0;
        }
        return finish_frame(d, frame);
    }
    if (d->discarding) {
        return 0;
    }
    if (d->length >= ESB_MAX_ENCODED) {
        ++d->counters.oversized;
        d->discarding = 1;
        d->length = 0;
        return 0;
    }
    d->buffer[d->length++] = byte;
    return 0;
}

/* ---- payload parsers ----------------------------------------------------- */

static int frame_is(const esb_frame_t *frame, uint8_t type)
{
    return frame->type == type && payload_shape_ok(type, frame->payload, frame->length);
}

int esb_parse_event(const esb_frame_t *frame, esb_event_t *out)
{
    const uint8_t *p = frame->payload;
    if (!frame_is(frame, ESB_EVENT)) {
        return 0;
    }
    out->kind = p[0];
    out->class_id = get_u16(p + 2);
    out->confidence_q16 = get_u16(p + 4);
    out->timestamp_ms = get_u32(p + 6);
    out->duration_ms = get_u32(p + 10);
    return 1;
}

int esb_parse_pcm(const esb_frame_t *frame, esb_pcm_t *out)
{
    const uint8_t *p = frame->payload;
    if (!frame_is(frame, ESB_PCM)) {
        return 0;
    }
    out->sample_rate = get_u32(p);
    out->first_sample = get_u32(p + 4);
    out->n_samples = (uint16_t)((frame->length - ESB_PCM_HEADER_SIZE) / 2u);
    out->data = p + ESB_PCM_HEADER_SIZE;
    return 1;
}

int esb_parse_scores(const esb_frame_t *frame, esb_scores_t *out)
{
    const uint8_t *p = frame->payload;
    if (!frame_is(frame, ESB_SCORES)) {
        return 0;
    }
    out->timestamp_ms = get_u32(p);
    out->n_classes = get_u16(p + 4);
    out->scores_q8 = p + ESB_SCORES_HEADER_SIZE;
    return 1;
}

int esb_parse_heartbeat(const esb_frame_t *frame, esb_heartbeat_t *out)
{
    const uint8_t *p = frame->payload;
    if (!frame_is(frame, ESB_HEARTBEAT)) {
        return 0;
    }
    out->uptime_ms = get_u32(p);
    out->rx_frames = get_u32(p + 4);
    out->rx_errors = get_u32(p + 8);
    out->overruns = get_u32(p + 12);
    return 1;
}

int esb_parse_config(const esb_frame_t *frame, esb_config_t *out)
{
    const uint8_t *p = frame->payload;
    if (!frame_is(frame, ESB_CONFIG)) {
        return 0;
    }
    out->n_entries = get_u16(p);
    out->entries = p + 2;
    return 1;
}

int16_t esb_pcm_sample(const esb_pcm_t *pcm, size_t index)
{
    uint16_t raw = get_u16(pcm->data + 2u * index);
    return (int16_t)(raw >= 0x8000u ? (long)raw - 0x10000L : (long)raw);
}

esb_threshold_t esb_config_entry(const esb_config_t *config, size_t index)
{
    const uint8_t *p = config->entries + ESB_CONFIG_ENTRY_SIZE * index;
    esb_threshold_t entry;
    entry.class_id = get_u16(p);
    entry.on_q16 = get_u16(p + 2);
    entry.off_q16 = get_u16(p + 4);
    return entry;
}
