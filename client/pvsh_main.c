/* pvsh entry point; everything else is in pvsh.c so the tests can call pvsh_run(). */
#include <stdio.h>

#include "pvsh.h"

int main(int argc, char **argv)
{
    return pvsh_run(argc, argv, stdin, stdout, stderr);
}
