#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "acpi/aml.h"

/* Expected bytes below are hand-encoded from ACPI 6.x §20 (AML grammar). */

static struct aml_builder builder;

static void setup(void)
{
    aml_builder_init(&builder, 0);
}

static void teardown(void)
{
    aml_builder_release(&builder);
}

#define EXPECT_BYTES(...)                                                                          \
    do {                                                                                           \
        const uint8_t expected[] = {__VA_ARGS__};                                                  \
        cr_assert_eq(builder.status, 0, "builder failed: %d", builder.status);                     \
        cr_assert_eq(builder.length, sizeof(expected), "length %zu, expected %zu", builder.length, \
                     sizeof(expected));                                                            \
        for (size_t i = 0; i < sizeof(expected); i++)                                              \
            cr_assert_eq(builder.data[i], expected[i], "byte %zu: 0x%02x, expected 0x%02x", i,     \
                         builder.data[i], expected[i]);                                            \
    } while (0)

static void reset_builder(void)
{
    aml_builder_release(&builder);
    aml_builder_init(&builder, 0);
}

Test(aml_pkglength, one_byte_form_counts_itself)
{
    uint8_t out[4];
    cr_assert_eq(aml_pkglength_encode(0, out), 1);
    cr_assert_eq(out[0], 0x01);
    cr_assert_eq(aml_pkglength_encode(62, out), 1);
    cr_assert_eq(out[0], 0x3f);
}

Test(aml_pkglength, two_byte_form)
{
    uint8_t out[4];
    /* 63 + 1 = 64 does not fit in 6 bits; 63 + 2 = 65 = 0x041. */
    cr_assert_eq(aml_pkglength_encode(63, out), 2);
    cr_assert_eq(out[0], 0x41);
    cr_assert_eq(out[1], 0x04);
    /* Largest two-byte value: 0xfff. */
    cr_assert_eq(aml_pkglength_encode(0xfff - 2, out), 2);
    cr_assert_eq(out[0], 0x4f);
    cr_assert_eq(out[1], 0xff);
}

Test(aml_pkglength, three_byte_form)
{
    uint8_t out[4];
    /* 0xffe + 2 = 0x1000 needs three bytes: 0xffe + 3 = 0x1001. */
    cr_assert_eq(aml_pkglength_encode(0xffe, out), 3);
    cr_assert_eq(out[0], 0x81);
    cr_assert_eq(out[1], 0x00);
    cr_assert_eq(out[2], 0x01);
    cr_assert_eq(aml_pkglength_encode(0xfffff - 3, out), 3);
    cr_assert_eq(out[0], 0x8f);
    cr_assert_eq(out[1], 0xff);
    cr_assert_eq(out[2], 0xff);
}

Test(aml_pkglength, four_byte_form_and_limit)
{
    uint8_t out[4];
    /* 0x100000 + 4 = 0x100004. */
    cr_assert_eq(aml_pkglength_encode(0x100000, out), 4);
    cr_assert_eq(out[0], 0xc4);
    cr_assert_eq(out[1], 0x00);
    cr_assert_eq(out[2], 0x00);
    cr_assert_eq(out[3], 0x01);
    cr_assert_eq(aml_pkglength_encode(AML_PKGLENGTH_MAX - 4, out), 4);
    cr_assert_eq(aml_pkglength_encode(AML_PKGLENGTH_MAX - 3, out), -EINVAL);
}

Test(aml_pkglength, raw_value_form_for_field_widths)
{
    uint8_t out[4];
    cr_assert_eq(aml_pkglength_encode_value(32, out), 1);
    cr_assert_eq(out[0], 32);
    cr_assert_eq(aml_pkglength_encode_value(0x40, out), 2);
    cr_assert_eq(out[0], 0x40);
    cr_assert_eq(out[1], 0x04);
}

Test(aml_integer, shortest_encoding, .init = setup, .fini = teardown)
{
    aml_integer(&builder, 0);
    EXPECT_BYTES(0x00);
    reset_builder();
    aml_integer(&builder, 1);
    EXPECT_BYTES(0x01);
    reset_builder();
    aml_integer(&builder, 2);
    EXPECT_BYTES(0x0a, 0x02);
    reset_builder();
    aml_integer(&builder, 0xff);
    EXPECT_BYTES(0x0a, 0xff);
    reset_builder();
    aml_integer(&builder, 0x100);
    EXPECT_BYTES(0x0b, 0x00, 0x01);
    reset_builder();
    aml_integer(&builder, 0x10000);
    EXPECT_BYTES(0x0c, 0x00, 0x00, 0x01, 0x00);
    reset_builder();
    aml_integer(&builder, 0xfec00000);
    EXPECT_BYTES(0x0c, 0x00, 0x00, 0xc0, 0xfe);
    reset_builder();
    aml_integer(&builder, 0x100000000ULL);
    EXPECT_BYTES(0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00);
}

Test(aml_name, single_segment_padded, .init = setup, .fini = teardown)
{
    aml_name(&builder, "PCI0");
    EXPECT_BYTES('P', 'C', 'I', '0');
    reset_builder();
    aml_name(&builder, "_S5");
    EXPECT_BYTES('_', 'S', '5', '_');
}

Test(aml_name, root_and_dual_and_multi, .init = setup, .fini = teardown)
{
    aml_name(&builder, "\\_SB");
    EXPECT_BYTES(0x5c, '_', 'S', 'B', '_');
    reset_builder();
    aml_name(&builder, "\\_SB.PCI0");
    EXPECT_BYTES(0x5c, 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
    reset_builder();
    aml_name(&builder, "\\_SB.PCI0.BLCK");
    EXPECT_BYTES(0x5c, 0x2f, 0x03, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'B', 'L', 'C', 'K');
    reset_builder();
    aml_name(&builder, "\\");
    EXPECT_BYTES(0x5c, 0x00);
}

Test(aml_name, parent_prefixes, .init = setup, .fini = teardown)
{
    aml_name(&builder, "^^S01.PCNT");
    EXPECT_BYTES(0x5e, 0x5e, 0x2e, 'S', '0', '1', '_', 'P', 'C', 'N', 'T');
}

Test(aml_name, rejects_malformed_names, .init = setup, .fini = teardown)
{
    const char *bad[] = {"", "TOOLONG", "pci0", "1ABC", "A..B", "A.", ".A", "\\^A", "A-B"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        reset_builder();
        cr_assert_eq(aml_name(&builder, bad[i]), -EINVAL, "accepted '%s'", bad[i]);
        cr_assert_eq(builder.length, 0, "'%s' left bytes behind", bad[i]);
    }
}

Test(aml_data, string_eisa_id_locals_args, .init = setup, .fini = teardown)
{
    aml_string(&builder, "AB");
    aml_eisa_id(&builder, "PNP0A03");
    aml_local(&builder, 0);
    aml_local(&builder, 7);
    aml_arg(&builder, 0);
    aml_arg(&builder, 6);
    /* EISAID("PNP0A03") is 0x030AD041 (as every DSDT shows). */
    EXPECT_BYTES(0x0d, 'A', 'B', 0x00, 0x0c, 0x41, 0xd0, 0x0a, 0x03, 0x60, 0x67, 0x68, 0x6e);
    cr_assert_eq(aml_local(&builder, 8), -EINVAL);
}

Test(aml_data, bad_eisa_id, .init = setup, .fini = teardown)
{
    cr_assert_eq(aml_eisa_id(&builder, "pnp0a03"), -EINVAL);
}

Test(aml_blocks, scope_device_method, .init = setup, .fini = teardown)
{
    aml_begin_scope(&builder, "\\_SB");
    aml_begin_device(&builder, "COM1");
    aml_begin_method(&builder, "PCEJ", 2, 0);
    aml_end(&builder);
    aml_end(&builder);
    aml_end(&builder);
    cr_assert_eq(aml_builder_finish(&builder, NULL), 0);
    EXPECT_BYTES(0x10, 0x14, 0x5c, '_', 'S', 'B', '_',  /* Scope, 20 bytes */
                 0x5b, 0x82, 0x0c, 'C', 'O', 'M', '1',  /* Device, 12 bytes */
                 0x14, 0x06, 'P', 'C', 'E', 'J', 0x02); /* Method, 2 args */
}

Test(aml_blocks, serialized_method_flags, .init = setup, .fini = teardown)
{
    aml_begin_method(&builder, "CSTA", 1, 1);
    aml_end(&builder);
    EXPECT_BYTES(0x14, 0x06, 'C', 'S', 'T', 'A', 0x09);
}

Test(aml_blocks, two_byte_pkglength_after_content_grows, .init = setup, .fini = teardown)
{
    aml_begin_scope(&builder, "TEST");
    for (int i = 0; i < 60; i++)
        aml_integer(&builder, 1);
    aml_end(&builder);
    /* Content: 4 (name) + 60 = 64 bytes → PkgLength 66 = 0x42 in two bytes. */
    cr_assert_eq(builder.length, 1 + 2 + 64);
    cr_assert_eq(builder.data[1], 0x42);
    cr_assert_eq(builder.data[2], 0x04);
    cr_assert_eq(memcmp(builder.data + 3, "TEST", 4), 0);
}

Test(aml_blocks, if_else_while, .init = setup, .fini = teardown)
{
    aml_begin_while(&builder);
    aml_lequal(&builder), aml_local(&builder, 0), aml_integer(&builder, 1);
    aml_begin_if(&builder);
    aml_lless(&builder), aml_arg(&builder, 0), aml_integer(&builder, 2);
    aml_break(&builder);
    aml_end(&builder);
    aml_begin_else(&builder);
    aml_increment(&builder), aml_local(&builder, 0);
    aml_end(&builder);
    aml_end(&builder);
    EXPECT_BYTES(0xa2, 0x0f, 0x93, 0x60, 0x01,       /* While (Local0 == One) */
                 0xa0, 0x06, 0x95, 0x68, 0x0a, 0x02, /* If (Arg0 < 2) */
                 0xa5,                               /* Break */
                 0xa1, 0x03, 0x75, 0x60);            /* Else { Local0++ } */
}

Test(aml_blocks, buffer_and_package, .init = setup, .fini = teardown)
{
    aml_begin_buffer(&builder);
    aml_bytes(&builder, (const uint8_t[]){1, 2, 3}, 3);
    aml_end(&builder);
    aml_begin_package(&builder, 2);
    aml_integer(&builder, 0);
    aml_integer(&builder, 5);
    aml_end(&builder);
    EXPECT_BYTES(0x11, 0x06, 0x0a, 0x03, 0x01, 0x02, 0x03, /* Buffer (3) */
                 0x12, 0x05, 0x02, 0x00, 0x0a, 0x05);      /* Package (2) */
}

Test(aml_blocks, field_list, .init = setup, .fini = teardown)
{
    aml_begin_field(&builder, "PRST", AML_FIELD_BYTE_ACCESS | AML_FIELD_WRITE_AS_ZEROS);
    aml_field_reserved(&builder, 32);
    aml_field_entry(&builder, "CPEN", 1);
    aml_end(&builder);
    EXPECT_BYTES(0x5b, 0x81, 0x0d, 'P', 'R', 'S', 'T', 0x41, 0x00, 0x20, 'C', 'P', 'E', 'N', 0x01);
    cr_assert_eq(aml_field_entry(&builder, "\\A", 1), -EINVAL);
}

Test(aml_blocks, resource_template_adds_end_tag, .init = setup, .fini = teardown)
{
    aml_begin_resource_template(&builder);
    aml_resource_io(&builder, 0x3f8, 0x3f8, 0, 8);
    aml_resource_irq_no_flags(&builder, 4);
    aml_end(&builder);
    EXPECT_BYTES(0x11, 0x10, 0x0a, 0x0d,                         /* Buffer (13) */
                 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, /* IO */
                 0x22, 0x10, 0x00,                               /* IRQNoFlags {4} */
                 0x79, 0x00);                                    /* EndTag */
}

Test(aml_resources, address_space_descriptors, .init = setup, .fini = teardown)
{
    aml_resource_word_bus_number(&builder, 0, 0xff);
    EXPECT_BYTES(0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, /* bus numbers, MinFixed|MaxFixed */
                 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, /* granularity, min, max */
                 0x00, 0x00, 0x00, 0x01);            /* translation, length */
    reset_builder();
    aml_resource_dword_memory(&builder, 0xc0000000, 0xfebfffff, 0, 1);
    EXPECT_BYTES(0x87, 0x17, 0x00, 0x00, 0x0c, 0x01,             /* memory, RW */
                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, /* granularity, min */
                 0xff, 0xff, 0xbf, 0xfe, 0x00, 0x00, 0x00, 0x00, /* max, translation */
                 0x00, 0x00, 0xc0, 0x3e);                        /* length */
    reset_builder();
    aml_resource_memory32_fixed(&builder, 0xfec00000, 0x1000, 1);
    EXPECT_BYTES(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0xc0, 0xfe, 0x00, 0x10, 0x00, 0x00);
    reset_builder();
    aml_resource_interrupt(&builder, 1, 0, 0, 9);
    EXPECT_BYTES(0x89, 0x06, 0x00, 0x01, 0x01, 0x09, 0x00, 0x00, 0x00);
    cr_assert_eq(aml_resource_dword_io(&builder, 10, 9), -EINVAL);
}

Test(aml_statements, store_shift_notify_acquire, .init = setup, .fini = teardown)
{
    aml_acquire(&builder, "BLCK", AML_WAIT_FOREVER);
    aml_store(&builder), aml_arg(&builder, 0), aml_name(&builder, "BNUM");
    aml_shift_left(&builder), aml_integer(&builder, 1), aml_arg(&builder, 1),
        aml_name(&builder, "B0EJ");
    aml_notify(&builder), aml_name(&builder, "S01"), aml_integer(&builder, 3);
    aml_release(&builder, "BLCK");
    aml_return(&builder), aml_call(&builder, "CSTA"), aml_integer(&builder, 0);
    aml_sleep(&builder), aml_integer(&builder, 200);
    EXPECT_BYTES(0x5b, 0x23, 'B', 'L', 'C', 'K', 0xff, 0xff, /* Acquire */
                 0x70, 0x68, 'B', 'N', 'U', 'M',             /* Store */
                 0x79, 0x01, 0x69, 'B', '0', 'E', 'J',       /* ShiftLeft */
                 0x86, 'S', '0', '1', '_', 0x0a, 0x03,       /* Notify */
                 0x5b, 0x27, 'B', 'L', 'C', 'K',             /* Release */
                 0xa4, 'C', 'S', 'T', 'A', 0x00,             /* Return (CSTA (0)) */
                 0x5b, 0x22, 0x0a, 0xc8);                    /* Sleep (200) */
}

Test(aml_statements, named_objects, .init = setup, .fini = teardown)
{
    aml_name_integer(&builder, "_ADR", 0x10000);
    aml_mutex(&builder, "BLCK", 0);
    aml_operation_region(&builder, "SEJ", AML_REGION_SYSTEM_IO, 0xae08, 4);
    EXPECT_BYTES(0x08, '_', 'A', 'D', 'R', 0x0c, 0x00, 0x00, 0x01, 0x00, /* Name */
                 0x5b, 0x01, 'B', 'L', 'C', 'K', 0x00,                   /* Mutex */
                 0x5b, 0x80, 'S', 'E', 'J', '_', 0x01, 0x0b, 0x08, 0xae, 0x0a, 0x04);
}

Test(aml_errors, overflow_is_sticky)
{
    struct aml_builder small;
    aml_builder_init(&small, 8);
    cr_assert_eq(aml_name(&small, "ABCD"), 0);
    cr_assert_eq(aml_name(&small, "EFGH"), 0);
    cr_assert_eq(aml_integer(&small, 2), -ENOSPC);
    cr_assert_eq(small.length, 8);
    cr_assert_eq(aml_integer(&small, 0), -ENOSPC, "the error must stick");
    struct pv_error error = {0};
    cr_assert_eq(aml_builder_finish(&small, &error), -ENOSPC);
    cr_assert(strlen(error.message) > 0);
    aml_builder_release(&small);
}

Test(aml_errors, end_without_begin, .init = setup, .fini = teardown)
{
    cr_assert_eq(aml_end(&builder), -EINVAL);
    cr_assert_eq(aml_builder_finish(&builder, NULL), -EINVAL);
}

Test(aml_errors, unclosed_block, .init = setup, .fini = teardown)
{
    aml_begin_scope(&builder, "\\_SB");
    struct pv_error error = {0};
    cr_assert_eq(aml_builder_finish(&builder, &error), -EINVAL);
    cr_assert(strstr(error.message, "not closed"));
}

Test(aml_errors, nesting_limit, .init = setup, .fini = teardown)
{
    for (int i = 0; i < AML_MAX_NESTING; i++)
        cr_assert_eq(aml_begin_if(&builder), 0);
    cr_assert_eq(aml_begin_if(&builder), -EINVAL);
}

Test(aml_builder, take_hands_over_the_bytes, .init = setup, .fini = teardown)
{
    aml_name(&builder, "ABCD");
    size_t length = 0;
    uint8_t *bytes = aml_builder_take(&builder, &length);
    cr_assert_eq(length, 4);
    cr_assert_eq(memcmp(bytes, "ABCD", 4), 0);
    cr_assert_eq(builder.length, 0);
    free(bytes);
}
