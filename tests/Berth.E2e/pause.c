/* The pod sandbox ("pause") process of the end-to-end run: holds the pod's namespaces until SIGTERM. */
#include <signal.h>
#include <unistd.h>

static void stop(int signal_number)
{
    (void)signal_number;
    _exit(0);
}

int main(void)
{
    signal(SIGTERM, stop);
    signal(SIGINT, stop);
    for (;;)
        pause();
}
