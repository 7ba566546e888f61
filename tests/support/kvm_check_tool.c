/* For shell scripts: exits 0 when /dev/kvm is usable, else prints the reason on stdout
 * and exits 77 (automake's skip status). */
#include <stdio.h>

#include "kvm_check.h"

int main(void)
{
    char reason[256];
    if (test_kvm_check(reason, sizeof(reason)) == 0)
        return 0;
    printf("%s\n", reason);
    return 77;
}
