/* Tiny helper for the userstacktrace recipe: calls getppid() through a few
 * frame-pointer-preserving functions so the kernel's user stack unwinder
 * (frame-pointer based) yields several frames, then stays alive for a while
 * so that `sym-userobj` can still resolve addresses via its mm when the
 * trace file is read.
 * Build: gcc -O0 -fno-omit-frame-pointer -o /tmp/tt_ustack ustack_demo.c */
#include <unistd.h>
#include <stdlib.h>

__attribute__((noinline)) static void tt_leaf(void) { (void)getppid(); }
__attribute__((noinline)) static void tt_middle(void) { tt_leaf(); tt_leaf(); }
__attribute__((noinline)) static void tt_outer(void) { tt_middle(); }

int main(int argc, char **argv)
{
    tt_outer();
    sleep(argc > 1 ? atoi(argv[1]) : 2);
    return 0;
}
