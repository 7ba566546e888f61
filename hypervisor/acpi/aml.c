#include "acpi/aml.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Opcodes (ACPI 6.x §20.3). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_ROOT_CHAR 0x5c
#define AML_PARENT_PREFIX 0x5e
#define AML_LOCAL0_OP 0x60
#define AML_ARG0_OP 0x68
#define AML_STORE_OP 0x70
#define AML_ADD_OP 0x72
#define AML_SUBTRACT_OP 0x74
#define AML_INCREMENT_OP 0x75
#define AML_DECREMENT_OP 0x76
#define AML_SHIFT_LEFT_OP 0x79
#define AML_SHIFT_RIGHT_OP 0x7a
#define AML_AND_OP 0x7b
#define AML_OR_OP 0x7d
#define AML_NOTIFY_OP 0x86
#define AML_LAND_OP 0x90
#define AML_LOR_OP 0x91
#define AML_LNOT_OP 0x92
#define AML_LEQUAL_OP 0x93
#define AML_LGREATER_OP 0x94
#define AML_LLESS_OP 0x95
#define AML_TO_INTEGER_OP 0x99
#define AML_IF_OP 0xa0
#define AML_ELSE_OP 0xa1
#define AML_WHILE_OP 0xa2
#define AML_RETURN_OP 0xa4
#define AML_BREAK_OP 0xa5
/* After AML_EXT_OP_PREFIX. */
#define AML_MUTEX_OP 0x01
#define AML_SLEEP_OP 0x22
#define AML_ACQUIRE_OP 0x23
#define AML_RELEASE_OP 0x27
#define AML_OPERATION_REGION_OP 0x80
#define AML_FIELD_OP 0x81
#define AML_DEVICE_OP 0x82

/* Resource descriptor tags (ACPI 6.x §6.4). */
#define RESOURCE_IRQ_NO_FLAGS 0x22 /* small, 2 bytes of data */
#define RESOURCE_IO 0x47           /* small, 7 bytes */
#define RESOURCE_END_TAG 0x79      /* small, 1 byte (checksum) */
#define RESOURCE_MEMORY32_FIXED 0x86
#define RESOURCE_DWORD_ADDRESS 0x87
#define RESOURCE_WORD_ADDRESS 0x88
#define RESOURCE_EXTENDED_INTERRUPT 0x89
#define RESOURCE_TYPE_MEMORY 0
#define RESOURCE_TYPE_IO 1
#define RESOURCE_TYPE_BUS_NUMBER 2
/* Address space general flags: producer, positive decode, MinFixed, MaxFixed. */
#define RESOURCE_MIN_FIXED (1u << 2)
#define RESOURCE_MAX_FIXED (1u << 3)
#define RESOURCE_IO_ENTIRE_RANGE 3
#define RESOURCE_MEMORY_WRITABLE 1
#define RESOURCE_MEMORY_CACHEABLE (1u << 1)

#define NAME_SEGMENT_SIZE 4
#define NAME_MAX_SEGMENTS 255

void aml_builder_init(struct aml_builder *builder, size_t max_size)
{
    memset(builder, 0, sizeof(*builder));
    builder->max_size = max_size;
}

void aml_builder_release(struct aml_builder *builder)
{
    free(builder->data);
    builder->data = NULL;
    builder->length = builder->capacity = 0;
    builder->depth = 0;
    builder->status = 0;
}

int aml_builder_finish(struct aml_builder *builder, struct pv_error *error)
{
    if (builder->status == -ENOSPC)
        return pv_error_set(error, -ENOSPC, "AML: more than %zu bytes", builder->max_size);
    if (builder->status == -ENOMEM)
        return pv_error_set(error, -ENOMEM, "AML: out of memory");
    if (builder->status < 0)
        return pv_error_set(error, builder->status, "AML: invalid name, value or block nesting");
    if (builder->depth != 0)
        return pv_error_set(error, -EINVAL, "AML: %u block(s) not closed", builder->depth);
    return 0;
}

uint8_t *aml_builder_take(struct aml_builder *builder, size_t *length)
{
    uint8_t *data = builder->data;
    *length = builder->length;
    builder->data = NULL;
    builder->length = builder->capacity = 0;
    return data;
}

static int fail(struct aml_builder *builder, int code)
{
    if (builder->status == 0)
        builder->status = code;
    return builder->status;
}

/* Makes room for `extra` more bytes. */
static int reserve(struct aml_builder *builder, size_t extra)
{
    if (builder->status < 0)
        return builder->status;
    if (extra > SIZE_MAX - builder->length)
        return fail(builder, -ENOSPC);
    size_t needed = builder->length + extra;
    if (builder->max_size && needed > builder->max_size)
        return fail(builder, -ENOSPC);
    if (needed <= builder->capacity)
        return 0;
    size_t capacity = builder->capacity ? builder->capacity : 256;
    while (capacity < needed)
        capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
    if (builder->max_size && capacity > builder->max_size)
        capacity = builder->max_size;
    uint8_t *data = realloc(builder->data, capacity);
    if (!data)
        return fail(builder, -ENOMEM);
    builder->data = data;
    builder->capacity = capacity;
    return 0;
}

int aml_bytes(struct aml_builder *builder, const void *data, size_t length)
{
    int rc = reserve(builder, length);
    if (rc < 0)
        return rc;
    if (length)
        memcpy(builder->data + builder->length, data, length);
    builder->length += length;
    return 0;
}

int aml_byte(struct aml_builder *builder, uint8_t value)
{
    return aml_bytes(builder, &value, 1);
}

static int little_endian(struct aml_builder *builder, uint64_t value, unsigned size)
{
    uint8_t bytes[8];
    for (unsigned i = 0; i < size; i++)
        bytes[i] = (uint8_t)(value >> (8 * i));
    return aml_bytes(builder, bytes, size);
}

static int opcode(struct aml_builder *builder, uint8_t op)
{
    return aml_byte(builder, op);
}

static int extended_opcode(struct aml_builder *builder, uint8_t op)
{
    uint8_t bytes[2] = {AML_EXT_OP_PREFIX, op};
    return aml_bytes(builder, bytes, sizeof(bytes));
}

/* --- PkgLength ------------------------------------------------------------ */

int aml_pkglength_encode_value(size_t value, uint8_t out[4])
{
    if (value > AML_PKGLENGTH_MAX)
        return -EINVAL;
    if (value < 0x40) {
        out[0] = (uint8_t)value;
        return 1;
    }
    /* Lead byte: bits 7-6 = number of following bytes, bits 3-0 = low nibble. */
    int extra = value < (1u << 12) ? 1 : value < (1u << 20) ? 2 : 3;
    out[0] = (uint8_t)((extra << 6) | (value & 0x0f));
    for (int i = 0; i < extra; i++)
        out[1 + i] = (uint8_t)(value >> (4 + 8 * i));
    return 1 + extra;
}

int aml_pkglength_encode(size_t content_length, uint8_t out[4])
{
    /* The encoded value includes the PkgLength bytes themselves, so the form
     * is the smallest one whose range holds content + its own size. */
    for (size_t size = 1; size <= 4; size++) {
        if (content_length > AML_PKGLENGTH_MAX - size)
            return -EINVAL;
        size_t total = content_length + size;
        uint8_t encoded[4];
        int used = aml_pkglength_encode_value(total, encoded);
        if (used == (int)size) {
            memcpy(out, encoded, size);
            return used;
        }
    }
    return -EINVAL;
}

/* --- names and data -------------------------------------------------------- */

static bool name_character(char c, bool first)
{
    return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

int aml_name(struct aml_builder *builder, const char *name)
{
    if (builder->status < 0)
        return builder->status;
    if (!name)
        return fail(builder, -EINVAL);
    uint8_t prefix[256];
    size_t prefix_length = 0;
    if (*name == '\\') {
        prefix[prefix_length++] = AML_ROOT_CHAR;
        name++;
    } else {
        while (*name == '^' && prefix_length < sizeof(prefix)) {
            prefix[prefix_length++] = AML_PARENT_PREFIX;
            name++;
        }
        if (*name == '^')
            return fail(builder, -EINVAL);
    }
    uint8_t segments[NAME_MAX_SEGMENTS][NAME_SEGMENT_SIZE];
    size_t count = 0;
    while (*name) {
        if (count == NAME_MAX_SEGMENTS)
            return fail(builder, -EINVAL);
        size_t length = strcspn(name, ".");
        if (length == 0 || length > NAME_SEGMENT_SIZE)
            return fail(builder, -EINVAL);
        for (size_t i = 0; i < NAME_SEGMENT_SIZE; i++) {
            if (i < length && !name_character(name[i], i == 0))
                return fail(builder, -EINVAL);
            segments[count][i] = i < length ? (uint8_t)name[i] : '_';
        }
        count++;
        name += length;
        if (*name == '.') {
            name++;
            if (!*name)
                return fail(builder, -EINVAL);
        }
    }
    if (count == 0 && prefix_length == 0)
        return fail(builder, -EINVAL);
    aml_bytes(builder, prefix, prefix_length);
    if (count == 0)
        return aml_byte(builder, 0x00); /* NullName: "\" or "^" alone */
    if (count == 2)
        aml_byte(builder, AML_DUAL_NAME_PREFIX);
    else if (count > 2) {
        aml_byte(builder, AML_MULTI_NAME_PREFIX);
        aml_byte(builder, (uint8_t)count);
    }
    return aml_bytes(builder, segments, count * NAME_SEGMENT_SIZE);
}

int aml_integer(struct aml_builder *builder, uint64_t value)
{
    if (value == 0)
        return opcode(builder, AML_ZERO_OP);
    if (value == 1)
        return opcode(builder, AML_ONE_OP);
    if (value <= 0xff) {
        opcode(builder, AML_BYTE_PREFIX);
        return little_endian(builder, value, 1);
    }
    if (value <= 0xffff) {
        opcode(builder, AML_WORD_PREFIX);
        return little_endian(builder, value, 2);
    }
    if (value <= 0xffffffff) {
        opcode(builder, AML_DWORD_PREFIX);
        return little_endian(builder, value, 4);
    }
    opcode(builder, AML_QWORD_PREFIX);
    return little_endian(builder, value, 8);
}

int aml_string(struct aml_builder *builder, const char *text)
{
    for (const char *c = text; *c; c++) {
        if ((unsigned char)*c > 0x7f)
            return fail(builder, -EINVAL); /* AML strings are ASCII */
    }
    opcode(builder, AML_STRING_PREFIX);
    return aml_bytes(builder, text, strlen(text) + 1);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int aml_eisa_id(struct aml_builder *builder, const char *id)
{
    /* Three letters in 5 bits each, then four hex digits, stored big-endian. */
    if (strlen(id) != 7)
        return fail(builder, -EINVAL);
    uint32_t value = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z')
            return fail(builder, -EINVAL);
        value = (value << 5) | (uint32_t)(id[i] - 'A' + 1);
    }
    for (int i = 3; i < 7; i++) {
        int digit = hex_digit(id[i]);
        if (digit < 0)
            return fail(builder, -EINVAL);
        value = (value << 4) | (uint32_t)digit;
    }
    uint32_t swapped =
        ((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >> 8) & 0xff00) | (value >> 24);
    opcode(builder, AML_DWORD_PREFIX);
    return little_endian(builder, swapped, 4);
}

int aml_local(struct aml_builder *builder, unsigned index)
{
    if (index > 7)
        return fail(builder, -EINVAL);
    return opcode(builder, (uint8_t)(AML_LOCAL0_OP + index));
}

int aml_arg(struct aml_builder *builder, unsigned index)
{
    if (index > 6)
        return fail(builder, -EINVAL);
    return opcode(builder, (uint8_t)(AML_ARG0_OP + index));
}

int aml_null_target(struct aml_builder *builder)
{
    return aml_byte(builder, 0x00);
}

int aml_call(struct aml_builder *builder, const char *method)
{
    return aml_name(builder, method);
}

/* --- named objects --------------------------------------------------------- */

int aml_name_declaration(struct aml_builder *builder, const char *name)
{
    opcode(builder, AML_NAME_OP);
    return aml_name(builder, name);
}

int aml_name_integer(struct aml_builder *builder, const char *name, uint64_t value)
{
    aml_name_declaration(builder, name);
    return aml_integer(builder, value);
}

int aml_name_text(struct aml_builder *builder, const char *name, const char *text)
{
    aml_name_declaration(builder, name);
    return aml_string(builder, text);
}

int aml_name_eisa_id(struct aml_builder *builder, const char *name, const char *id)
{
    aml_name_declaration(builder, name);
    return aml_eisa_id(builder, id);
}

int aml_mutex(struct aml_builder *builder, const char *name, unsigned sync_level)
{
    if (sync_level > 15)
        return fail(builder, -EINVAL);
    extended_opcode(builder, AML_MUTEX_OP);
    aml_name(builder, name);
    return aml_byte(builder, (uint8_t)sync_level);
}

int aml_operation_region(struct aml_builder *builder, const char *name, enum aml_region_space space,
                         uint64_t offset, uint64_t length)
{
    extended_opcode(builder, AML_OPERATION_REGION_OP);
    aml_name(builder, name);
    aml_byte(builder, (uint8_t)space);
    aml_integer(builder, offset);
    return aml_integer(builder, length);
}

/* --- blocks ------------------------------------------------------------------ */

/* Call after the block's opcode: remembers where its PkgLength goes. */
static int open_block(struct aml_builder *builder, enum aml_block_kind kind)
{
    if (builder->status < 0)
        return builder->status;
    if (builder->depth == AML_MAX_NESTING)
        return fail(builder, -EINVAL);
    builder->open[builder->depth].kind = kind;
    builder->open[builder->depth].length_position = builder->length;
    builder->depth++;
    return 0;
}

/* Inserts `length` bytes at `position`, moving what follows. */
static int insert_bytes(struct aml_builder *builder, size_t position, const uint8_t *bytes,
                        size_t length)
{
    int rc = reserve(builder, length);
    if (rc < 0)
        return rc;
    memmove(builder->data + position + length, builder->data + position,
            builder->length - position);
    memcpy(builder->data + position, bytes, length);
    builder->length += length;
    return 0;
}

static uint8_t integer_encoding(uint64_t value, uint8_t out[9])
{
    /* Same rules as aml_integer, into a small array for insertion. */
    if (value <= 1) {
        out[0] = value ? AML_ONE_OP : AML_ZERO_OP;
        return 1;
    }
    unsigned size = value <= 0xff ? 1 : value <= 0xffff ? 2 : value <= 0xffffffff ? 4 : 8;
    out[0] = size == 1   ? AML_BYTE_PREFIX
             : size == 2 ? AML_WORD_PREFIX
             : size == 4 ? AML_DWORD_PREFIX
                         : AML_QWORD_PREFIX;
    for (unsigned i = 0; i < size; i++)
        out[1 + i] = (uint8_t)(value >> (8 * i));
    return (uint8_t)(1 + size);
}

int aml_end(struct aml_builder *builder)
{
    if (builder->status < 0)
        return builder->status;
    if (builder->depth == 0)
        return fail(builder, -EINVAL);
    struct aml_open_block *block = &builder->open[builder->depth - 1];
    if (block->kind == AML_BLOCK_RESOURCES) {
        /* End tag; a zero checksum means "treat as valid" to every OS. */
        uint8_t end_tag[2] = {RESOURCE_END_TAG, 0};
        int rc = aml_bytes(builder, end_tag, sizeof(end_tag));
        if (rc < 0)
            return rc;
    }
    if (block->kind != AML_BLOCK_PLAIN) {
        uint8_t size[9];
        uint8_t used = integer_encoding(builder->length - block->length_position, size);
        int rc = insert_bytes(builder, block->length_position, size, used);
        if (rc < 0)
            return rc;
    }
    uint8_t encoded[4];
    int used = aml_pkglength_encode(builder->length - block->length_position, encoded);
    if (used < 0)
        return fail(builder, -ENOSPC);
    int rc = insert_bytes(builder, block->length_position, encoded, (size_t)used);
    if (rc < 0)
        return rc;
    builder->depth--;
    return 0;
}

int aml_begin_scope(struct aml_builder *builder, const char *name)
{
    opcode(builder, AML_SCOPE_OP);
    open_block(builder, AML_BLOCK_PLAIN);
    return aml_name(builder, name);
}

int aml_begin_device(struct aml_builder *builder, const char *name)
{
    extended_opcode(builder, AML_DEVICE_OP);
    open_block(builder, AML_BLOCK_PLAIN);
    return aml_name(builder, name);
}

int aml_begin_method(struct aml_builder *builder, const char *name, unsigned arg_count,
                     int serialized)
{
    if (arg_count > 7)
        return fail(builder, -EINVAL);
    opcode(builder, AML_METHOD_OP);
    open_block(builder, AML_BLOCK_PLAIN);
    aml_name(builder, name);
    /* MethodFlags: bits 0-2 argument count, bit 3 serialized, sync level 0. */
    return aml_byte(builder, (uint8_t)(arg_count | (serialized ? 0x08 : 0)));
}

int aml_begin_if(struct aml_builder *builder)
{
    opcode(builder, AML_IF_OP);
    return open_block(builder, AML_BLOCK_PLAIN);
}

int aml_begin_else(struct aml_builder *builder)
{
    opcode(builder, AML_ELSE_OP);
    return open_block(builder, AML_BLOCK_PLAIN);
}

int aml_begin_while(struct aml_builder *builder)
{
    opcode(builder, AML_WHILE_OP);
    return open_block(builder, AML_BLOCK_PLAIN);
}

int aml_begin_package(struct aml_builder *builder, unsigned element_count)
{
    if (element_count > 0xff)
        return fail(builder, -EINVAL);
    opcode(builder, AML_PACKAGE_OP);
    open_block(builder, AML_BLOCK_PLAIN);
    return aml_byte(builder, (uint8_t)element_count);
}

int aml_begin_buffer(struct aml_builder *builder)
{
    opcode(builder, AML_BUFFER_OP);
    return open_block(builder, AML_BLOCK_BUFFER);
}

int aml_begin_resource_template(struct aml_builder *builder)
{
    opcode(builder, AML_BUFFER_OP);
    return open_block(builder, AML_BLOCK_RESOURCES);
}

int aml_begin_field(struct aml_builder *builder, const char *region, unsigned flags)
{
    if (flags > 0xff)
        return fail(builder, -EINVAL);
    extended_opcode(builder, AML_FIELD_OP);
    open_block(builder, AML_BLOCK_PLAIN);
    aml_name(builder, region);
    return aml_byte(builder, (uint8_t)flags);
}

static int field_width(struct aml_builder *builder, unsigned bits)
{
    uint8_t encoded[4];
    int used = aml_pkglength_encode_value(bits, encoded);
    if (used < 0 || bits == 0)
        return fail(builder, -EINVAL);
    return aml_bytes(builder, encoded, (size_t)used);
}

int aml_field_entry(struct aml_builder *builder, const char *name, unsigned bits)
{
    /* A NamedField is a bare NameSeg, never a path. */
    if (!name || strchr(name, '.') || name[0] == '\\' || name[0] == '^')
        return fail(builder, -EINVAL);
    aml_name(builder, name);
    return field_width(builder, bits);
}

int aml_field_reserved(struct aml_builder *builder, unsigned bits)
{
    aml_byte(builder, 0x00);
    return field_width(builder, bits);
}

/* --- statements and expressions ------------------------------------------- */

int aml_store(struct aml_builder *builder)
{
    return opcode(builder, AML_STORE_OP);
}

int aml_add(struct aml_builder *builder)
{
    return opcode(builder, AML_ADD_OP);
}

int aml_subtract(struct aml_builder *builder)
{
    return opcode(builder, AML_SUBTRACT_OP);
}

int aml_and(struct aml_builder *builder)
{
    return opcode(builder, AML_AND_OP);
}

int aml_or(struct aml_builder *builder)
{
    return opcode(builder, AML_OR_OP);
}

int aml_shift_left(struct aml_builder *builder)
{
    return opcode(builder, AML_SHIFT_LEFT_OP);
}

int aml_shift_right(struct aml_builder *builder)
{
    return opcode(builder, AML_SHIFT_RIGHT_OP);
}

int aml_to_integer(struct aml_builder *builder)
{
    return opcode(builder, AML_TO_INTEGER_OP);
}

int aml_increment(struct aml_builder *builder)
{
    return opcode(builder, AML_INCREMENT_OP);
}

int aml_decrement(struct aml_builder *builder)
{
    return opcode(builder, AML_DECREMENT_OP);
}

int aml_lequal(struct aml_builder *builder)
{
    return opcode(builder, AML_LEQUAL_OP);
}

int aml_lless(struct aml_builder *builder)
{
    return opcode(builder, AML_LLESS_OP);
}

int aml_lgreater(struct aml_builder *builder)
{
    return opcode(builder, AML_LGREATER_OP);
}

int aml_lnot(struct aml_builder *builder)
{
    return opcode(builder, AML_LNOT_OP);
}

int aml_land(struct aml_builder *builder)
{
    return opcode(builder, AML_LAND_OP);
}

int aml_lor(struct aml_builder *builder)
{
    return opcode(builder, AML_LOR_OP);
}

int aml_notify(struct aml_builder *builder)
{
    return opcode(builder, AML_NOTIFY_OP);
}

int aml_return(struct aml_builder *builder)
{
    return opcode(builder, AML_RETURN_OP);
}

int aml_sleep(struct aml_builder *builder)
{
    return extended_opcode(builder, AML_SLEEP_OP);
}

int aml_break(struct aml_builder *builder)
{
    return opcode(builder, AML_BREAK_OP);
}

int aml_acquire(struct aml_builder *builder, const char *mutex, uint16_t timeout)
{
    extended_opcode(builder, AML_ACQUIRE_OP);
    aml_name(builder, mutex);
    return little_endian(builder, timeout, 2); /* a raw WordData, not an integer term */
}

int aml_release(struct aml_builder *builder, const char *mutex)
{
    extended_opcode(builder, AML_RELEASE_OP);
    return aml_name(builder, mutex);
}

/* --- resource descriptors ---------------------------------------------------- */

int aml_resource_io(struct aml_builder *builder, uint16_t minimum, uint16_t maximum,
                    uint8_t alignment, uint8_t length)
{
    uint8_t descriptor[8] = {
        RESOURCE_IO,      1, /* decodes 16 address bits */
        (uint8_t)minimum, (uint8_t)(minimum >> 8),
        (uint8_t)maximum, (uint8_t)(maximum >> 8),
        alignment,        length,
    };
    return aml_bytes(builder, descriptor, sizeof(descriptor));
}

int aml_resource_irq_no_flags(struct aml_builder *builder, unsigned irq)
{
    if (irq > 15)
        return fail(builder, -EINVAL);
    uint16_t mask = (uint16_t)(1u << irq);
    uint8_t descriptor[3] = {RESOURCE_IRQ_NO_FLAGS, (uint8_t)mask, (uint8_t)(mask >> 8)};
    return aml_bytes(builder, descriptor, sizeof(descriptor));
}

int aml_resource_memory32_fixed(struct aml_builder *builder, uint32_t base, uint32_t length,
                                int writable)
{
    aml_byte(builder, RESOURCE_MEMORY32_FIXED);
    little_endian(builder, 9, 2);
    aml_byte(builder, writable ? 1 : 0);
    little_endian(builder, base, 4);
    return little_endian(builder, length, 4);
}

/* Word (size 2) or DWord (size 4) address space descriptor, producer, fixed range. */
static int address_space(struct aml_builder *builder, unsigned size, uint8_t type,
                         uint8_t type_flags, uint64_t minimum, uint64_t maximum)
{
    if (maximum < minimum)
        return fail(builder, -EINVAL);
    aml_byte(builder, size == 2 ? RESOURCE_WORD_ADDRESS : RESOURCE_DWORD_ADDRESS);
    little_endian(builder, 3 + 5 * size, 2); /* bytes after the length field */
    aml_byte(builder, type);
    aml_byte(builder, RESOURCE_MIN_FIXED | RESOURCE_MAX_FIXED);
    aml_byte(builder, type_flags);
    little_endian(builder, 0, size); /* granularity */
    little_endian(builder, minimum, size);
    little_endian(builder, maximum, size);
    little_endian(builder, 0, size); /* translation offset */
    return little_endian(builder, maximum - minimum + 1, size);
}

int aml_resource_word_bus_number(struct aml_builder *builder, uint16_t minimum, uint16_t maximum)
{
    return address_space(builder, 2, RESOURCE_TYPE_BUS_NUMBER, 0, minimum, maximum);
}

int aml_resource_word_io(struct aml_builder *builder, uint16_t minimum, uint16_t maximum)
{
    return address_space(builder, 2, RESOURCE_TYPE_IO, RESOURCE_IO_ENTIRE_RANGE, minimum, maximum);
}

int aml_resource_dword_io(struct aml_builder *builder, uint32_t minimum, uint32_t maximum)
{
    return address_space(builder, 4, RESOURCE_TYPE_IO, RESOURCE_IO_ENTIRE_RANGE, minimum, maximum);
}

int aml_resource_dword_memory(struct aml_builder *builder, uint32_t minimum, uint32_t maximum,
                              int cacheable, int writable)
{
    uint8_t flags = (uint8_t)((cacheable ? RESOURCE_MEMORY_CACHEABLE : 0) |
                              (writable ? RESOURCE_MEMORY_WRITABLE : 0));
    return address_space(builder, 4, RESOURCE_TYPE_MEMORY, flags, minimum, maximum);
}

int aml_resource_interrupt(struct aml_builder *builder, int level_triggered, int active_low,
                           int shared, uint32_t gsi)
{
    /* Flags: bit 0 consumer, bit 1 edge, bit 2 active low, bit 3 shared. */
    uint8_t flags = (uint8_t)(0x01 | (level_triggered ? 0 : 0x02) | (active_low ? 0x04 : 0) |
                              (shared ? 0x08 : 0));
    aml_byte(builder, RESOURCE_EXTENDED_INTERRUPT);
    little_endian(builder, 6, 2);
    aml_byte(builder, flags);
    aml_byte(builder, 1); /* one interrupt number */
    return little_endian(builder, gsi, 4);
}
