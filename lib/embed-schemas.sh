#!/bin/sh
# Writes, on stdout, C source holding each RelaxNG schema given as an argument (a text
# file) as a string: lib/schemas_builtin.h's table, so plugvirtd validates domain XML
# without installed schemas. Only sed: no new build dependency.
set -eu
echo "/* Generated from the RelaxNG schemas in xml-schemas by lib/embed-schemas.sh: do not edit. */"
echo "#include \"schemas_builtin.h\""
echo
echo "const struct builtin_schema builtin_schemas[] = {"
for file in "$@"; do
    printf '    {"%s",\n' "$(basename "$file")"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/     "/' -e 's/$/\\n"/' "$file"
    echo "    },"
done
echo "    {0, 0},"
echo "};"
