/* AML (ACPI Machine Language) bytecode builder.
 *
 * The builder appends to one growing byte buffer, in AML's own prefix order:
 * an operator is emitted first and its operands follow as further calls, e.g.
 * Store (Add (Local0, One), Local1) is
 *     aml_store(b), aml_add(b), aml_local(b, 0), aml_integer(b, 1),
 *         aml_null_target(b), aml_local(b, 1);
 * (callers write one AML statement per C statement, joined by commas).
 * Objects with a PkgLength (Scope, Device, Method, If, Else, While, Package,
 * Buffer, Field, ResourceTemplate) are opened with aml_begin_* and closed
 * with aml_end(), which encodes the length once the contents are known.
 *
 * Errors are sticky: the first failure (-ENOMEM, -ENOSPC past max_size,
 * -EINVAL for a bad name or an unbalanced aml_end) is kept, later calls do
 * nothing and return it. Every call returns the builder's status, so callers
 * can check each step or only aml_builder_finish() at the end. */
#ifndef PLUGVIRT_AML_H
#define PLUGVIRT_AML_H

#include <stddef.h>
#include <stdint.h>

#include "pv_error.h"

#define AML_MAX_NESTING 32
#define AML_PKGLENGTH_MAX ((1u << 28) - 1)

enum aml_block_kind {
    AML_BLOCK_PLAIN,     /* opcode, PkgLength, contents */
    AML_BLOCK_BUFFER,    /* contents are the byte list; BufferSize is added at the end */
    AML_BLOCK_RESOURCES, /* a buffer of resource descriptors; the end tag is added */
};

struct aml_open_block {
    enum aml_block_kind kind;
    size_t length_position; /* where the PkgLength goes */
};

struct aml_builder {
    uint8_t *data;
    size_t length;
    size_t capacity;
    size_t max_size; /* 0: no limit other than memory */
    int status;      /* 0 or the first error (negative errno) */
    struct aml_open_block open[AML_MAX_NESTING];
    unsigned depth;
};

/* Region spaces for OperationRegion. */
enum aml_region_space {
    AML_REGION_SYSTEM_MEMORY = 0,
    AML_REGION_SYSTEM_IO = 1,
    AML_REGION_PCI_CONFIG = 2,
};

/* FieldFlags: access type | lock rule | update rule. */
enum aml_field_access {
    AML_FIELD_ANY_ACCESS = 0,
    AML_FIELD_BYTE_ACCESS = 1,
    AML_FIELD_WORD_ACCESS = 2,
    AML_FIELD_DWORD_ACCESS = 3,
    AML_FIELD_QWORD_ACCESS = 4,
};
#define AML_FIELD_LOCK (1u << 4)
#define AML_FIELD_PRESERVE (0u << 5)
#define AML_FIELD_WRITE_AS_ONES (1u << 5)
#define AML_FIELD_WRITE_AS_ZEROS (2u << 5)

/* Notify values. */
#define AML_NOTIFY_BUS_CHECK 0
#define AML_NOTIFY_DEVICE_CHECK 1
#define AML_NOTIFY_EJECT_REQUEST 3

/* Timeout for Acquire that waits forever. */
#define AML_WAIT_FOREVER 0xffff

void aml_builder_init(struct aml_builder *builder, size_t max_size);
/* Frees the buffer; the builder can be initialised again. */
void aml_builder_release(struct aml_builder *builder);
/* 0 when every block is closed and no error happened; else fills `error`. */
int aml_builder_finish(struct aml_builder *builder, struct pv_error *error);
/* Hands the bytes over to the caller (free() them); the builder is left empty. */
uint8_t *aml_builder_take(struct aml_builder *builder, size_t *length);

/* Encodes a PkgLength for `content_length` bytes that follow it (the encoded
 * value counts the PkgLength bytes too). Returns the number of bytes (1-4)
 * written to `out`, or -EINVAL when the length is too large. */
int aml_pkglength_encode(size_t content_length, uint8_t out[4]);
/* Encodes `value` in PkgLength form without counting the encoding itself,
 * as field widths in a FieldList use it. */
int aml_pkglength_encode_value(size_t value, uint8_t out[4]);

/* --- raw data and terms -------------------------------------------------- */
int aml_byte(struct aml_builder *builder, uint8_t value);
int aml_bytes(struct aml_builder *builder, const void *data, size_t length);
/* NameString: "\\" root, "^" parents, dot-separated segments of 1-4 characters
 * [A-Z_0-9] (first not a digit), padded with '_'. "\\" alone is the root. */
int aml_name(struct aml_builder *builder, const char *name);
/* Integer with the shortest encoding: Zero, One, Byte, Word, DWord or QWord. */
int aml_integer(struct aml_builder *builder, uint64_t value);
int aml_string(struct aml_builder *builder, const char *text);
/* EISAID("PNP0A03") as a DWord integer; -EINVAL if malformed. */
int aml_eisa_id(struct aml_builder *builder, const char *id);
int aml_local(struct aml_builder *builder, unsigned index); /* Local0..Local7 */
int aml_arg(struct aml_builder *builder, unsigned index);   /* Arg0..Arg6 */
int aml_null_target(struct aml_builder *builder);           /* no result target */
/* A method call is its name followed by its arguments. */
int aml_call(struct aml_builder *builder, const char *method);

/* --- named objects -------------------------------------------------------- */
/* Name(name, <data object that follows>) */
int aml_name_declaration(struct aml_builder *builder, const char *name);
int aml_name_integer(struct aml_builder *builder, const char *name, uint64_t value);
int aml_name_text(struct aml_builder *builder, const char *name, const char *text);
int aml_name_eisa_id(struct aml_builder *builder, const char *name, const char *id);
int aml_mutex(struct aml_builder *builder, const char *name, unsigned sync_level);
int aml_operation_region(struct aml_builder *builder, const char *name, enum aml_region_space space,
                         uint64_t offset, uint64_t length);

/* --- blocks: each needs a matching aml_end() ------------------------------ */
int aml_begin_scope(struct aml_builder *builder, const char *name);
int aml_begin_device(struct aml_builder *builder, const char *name);
int aml_begin_method(struct aml_builder *builder, const char *name, unsigned arg_count,
                     int serialized);
int aml_begin_if(struct aml_builder *builder); /* the predicate comes first in the block */
int aml_begin_else(struct aml_builder *builder);
int aml_begin_while(struct aml_builder *builder); /* the predicate comes first */
int aml_begin_package(struct aml_builder *builder, unsigned element_count);
int aml_begin_buffer(struct aml_builder *builder); /* followed by aml_byte/aml_bytes */
int aml_begin_field(struct aml_builder *builder, const char *region, unsigned flags);
int aml_field_entry(struct aml_builder *builder, const char *name, unsigned bits);
int aml_field_reserved(struct aml_builder *builder, unsigned bits);
int aml_begin_resource_template(struct aml_builder *builder);
int aml_end(struct aml_builder *builder);

/* --- statements and expressions (operands follow) ------------------------ */
int aml_store(struct aml_builder *builder);       /* source, target */
int aml_add(struct aml_builder *builder);         /* operand, operand, target */
int aml_subtract(struct aml_builder *builder);    /* operand, operand, target */
int aml_and(struct aml_builder *builder);         /* operand, operand, target */
int aml_or(struct aml_builder *builder);          /* operand, operand, target */
int aml_shift_left(struct aml_builder *builder);  /* operand, shift count, target */
int aml_shift_right(struct aml_builder *builder); /* operand, shift count, target */
int aml_to_integer(struct aml_builder *builder);  /* operand, target */
int aml_increment(struct aml_builder *builder);   /* target */
int aml_decrement(struct aml_builder *builder);   /* target */
int aml_lequal(struct aml_builder *builder);      /* operand, operand */
int aml_lless(struct aml_builder *builder);       /* operand, operand */
int aml_lgreater(struct aml_builder *builder);    /* operand, operand */
int aml_lnot(struct aml_builder *builder);        /* operand */
int aml_land(struct aml_builder *builder);        /* operand, operand */
int aml_lor(struct aml_builder *builder);         /* operand, operand */
int aml_notify(struct aml_builder *builder);      /* object, value */
int aml_return(struct aml_builder *builder);      /* value */
int aml_sleep(struct aml_builder *builder);       /* milliseconds */
int aml_break(struct aml_builder *builder);
/* Complete statements. */
int aml_acquire(struct aml_builder *builder, const char *mutex, uint16_t timeout);
int aml_release(struct aml_builder *builder, const char *mutex);

/* --- resource descriptors (inside aml_begin_resource_template) ----------- */
/* IO(Decode16, min, max, alignment, length) */
int aml_resource_io(struct aml_builder *builder, uint16_t minimum, uint16_t maximum,
                    uint8_t alignment, uint8_t length);
/* IRQNoFlags() { irq } */
int aml_resource_irq_no_flags(struct aml_builder *builder, unsigned irq);
int aml_resource_memory32_fixed(struct aml_builder *builder, uint32_t base, uint32_t length,
                                int writable);
/* Producer, MinFixed, MaxFixed, PosDecode ranges [minimum, maximum]. */
int aml_resource_word_bus_number(struct aml_builder *builder, uint16_t minimum, uint16_t maximum);
int aml_resource_word_io(struct aml_builder *builder, uint16_t minimum, uint16_t maximum);
int aml_resource_dword_io(struct aml_builder *builder, uint32_t minimum, uint32_t maximum);
int aml_resource_dword_memory(struct aml_builder *builder, uint32_t minimum, uint32_t maximum,
                              int cacheable, int writable);
/* Interrupt(ResourceConsumer, Level|Edge, ActiveHigh|ActiveLow, Exclusive|Shared) { gsi } */
int aml_resource_interrupt(struct aml_builder *builder, int level_triggered, int active_low,
                           int shared, uint32_t gsi);

#endif
