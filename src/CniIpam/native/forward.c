/*
 * berth's forwarding prelude: hands a CNI call to berth-agent before the .NET runtime starts.
 *
 * Linked into the NativeAOT executable (CniIpam.csproj), it runs as an ELF constructor, before main. When the agent
 * answers on its socket, the call is relayed here and the process exits with the agent's exit code: the runtime,
 * which costs a plugin process more than anything it does (docs/benchmarks.md), never starts. When the agent cannot
 * answer (no socket, nobody listening, a refusal, a connection closed mid-call, an answer that is no frame, no answer
 * in time), the constructor returns and the plugin does the call itself, reading first what was read here of stdin
 * (berth_forwarded_stdin, ForwardedStdin.cs). With no agent this costs one failed connect, and stdin is not touched.
 *
 * The frames are CallFrames' (src/Shared/Plugin/CallFrames.cs), whose C# side the agent reads; the variables a
 * request carries and every bound below are that file's, and a black-box test compares the bytes this code sends
 * with CallFrames.EncodeRequest (AgentServingTests). Libc only, no threads, nothing kept
 * but the stdin buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* CallFrames.Environment, in its order: a request names a variable by its index there. */
static const char *const call_environment[] = {
    "CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_NETNS", "CNI_ARGS", "BERTH_BOOT_ID_FILE",
};
enum { variables = sizeof call_environment / sizeof call_environment[0] };

enum {
    header_bytes = 9,                 /* CallFrames.HeaderBytes: "BRTH", a kind byte, the body's length */
    max_value_bytes = 128 * 1024,     /* CallFrames.MaxValueBytes */
    max_stdin_bytes = 1 << 20,        /* ConfigParser.MaxStdinBytes */
    max_output_bytes = 1 << 20,       /* CallFrames.MaxOutputBytes */
    max_answer_bytes = 4 + 4 + max_output_bytes + 4 + max_output_bytes,
    max_path_bytes = 107,             /* PluginSocket.MaxPathBytes */
    /* The wait for an answer: longer than the store's writer lock lets any call stand in line (10 s without a
       hand-over, 60 s in all), so a healthy agent is never abandoned; only a wedged one is. Giving up is safe: the
       agent commits nothing for a caller that is gone, an ADD repeated for an attachment returns the lease it holds,
       and a DEL may be repeated. */
    answer_timeout_seconds = 90,
};

/* PluginSocket.DefaultPath, and PluginSocket.Variable, which names another or "off". */
static const char default_socket[] = "/run/berth/plugin.sock";
static const char socket_variable[] = "BERTH_PLUGIN_SOCKET";

/* What was read of stdin before the call fell back: the plugin reads it first (berth_forwarded_stdin). */
static unsigned char *stdin_read;
static size_t stdin_length;
static int stdin_complete;

/*
 * For Program.cs: -1 when the prelude did not read stdin (the plugin reads it all itself); else the bytes read, and
 * 1 when they are all of it, 0 when the rest (or a read error) is still on the descriptor.
 */
int berth_forwarded_stdin(const unsigned char **data, size_t *length)
{
    if (stdin_read == NULL) return -1;
    *data = stdin_read;
    *length = stdin_length;
    return stdin_complete;
}

static void put32(unsigned char *at, uint32_t value)
{
    at[0] = (unsigned char)value;
    at[1] = (unsigned char)(value >> 8);
    at[2] = (unsigned char)(value >> 16);
    at[3] = (unsigned char)(value >> 24);
}

static uint32_t get32(const unsigned char *at)
{
    return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

/* One byte onto the reason's counter file beside the socket, which the agent made; never synced, never fatal. */
static void count(const char *socket_path, const char *reason)
{
    char file[max_path_bytes + 32];
    size_t n = strlen(socket_path);
    memcpy(file, socket_path, n);
    memcpy(file + n, ".fallback-", 10);
    strcpy(file + n + 10, reason);
    int fd = open(file, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t ignored = write(fd, "x", 1);
    (void)ignored;
    close(fd);
}

static int connect_agent(const char *path, const char **failure)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    memcpy(address.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    while (connect(fd, (struct sockaddr *)&address, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1)) != 0)
    {
        if (errno == EINTR) continue;
        *failure = errno == ENOENT || errno == ENOTDIR ? "absent" : errno == EACCES || errno == EPERM ? "denied" : "refused";
        close(fd);
        return -1;
    }
    struct timeval timeout = { .tv_sec = answer_timeout_seconds };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    return fd;
}

/* stdin up to one byte past the plugin's limit; complete when it ended within the limit and read without error. */
static int read_stdin(void)
{
    stdin_read = malloc((size_t)max_stdin_bytes + 1);
    if (stdin_read == NULL) return 0;
    for (;;)
    {
        if (stdin_length > (size_t)max_stdin_bytes) return 0;
        ssize_t n = read(0, stdin_read + stdin_length, (size_t)max_stdin_bytes + 1 - stdin_length);
        if (n > 0) stdin_length += (size_t)n;
        else if (n == 0) return stdin_complete = 1;
        else if (errno != EINTR) return 0;
    }
}

static int send_all(int fd, const unsigned char *data, size_t length)
{
    while (length > 0)
    {
        ssize_t n = send(fd, data, length, MSG_NOSIGNAL);
        if (n > 0)
        {
            data += n;
            length -= (size_t)n;
        }
        else if (n < 0 && errno == EINTR) continue;
        else return 0;
    }
    return 1;
}

/* The request frame: the variables of call_environment that are set, and stdin. */
static int send_request(int fd)
{
    size_t length = 1 + 4 + stdin_length;
    for (int i = 0; i < variables; i++)
    {
        const char *value = getenv(call_environment[i]);
        if (value != NULL) length += 1 + 4 + strlen(value);
    }
    unsigned char *frame = malloc(header_bytes + length);
    if (frame == NULL) return 0;
    memcpy(frame, "BRTHQ", 5);
    put32(frame + 5, (uint32_t)length);
    unsigned char *at = frame + header_bytes + 1;
    unsigned char set = 0;
    for (int i = 0; i < variables; i++)
    {
        const char *value = getenv(call_environment[i]);
        if (value == NULL) continue;
        size_t n = strlen(value);
        *at++ = (unsigned char)i;
        put32(at, (uint32_t)n);
        memcpy(at + 4, value, n);
        at += 4 + n;
        set++;
    }
    frame[header_bytes] = set;
    put32(at, (uint32_t)stdin_length);
    memcpy(at + 4, stdin_read, stdin_length);
    int sent = send_all(fd, frame, header_bytes + length);
    free(frame);
    return sent;
}

static int read_exactly(int fd, unsigned char *into, size_t length, const char **why)
{
    while (length > 0)
    {
        ssize_t n = read(fd, into, length);
        if (n > 0)
        {
            into += n;
            length -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        *why = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "timeout" : "closed";
        return 0;
    }
    return 1;
}

static void write_all(int fd, const unsigned char *data, size_t length)
{
    while (length > 0)
    {
        ssize_t n = write(fd, data, length);
        if (n > 0)
        {
            data += n;
            length -= (size_t)n;
        }
        else if (n < 0 && errno == EINTR) continue;
        else return;
    }
}

/* One block of a result body (a length, then that many bytes) at *at, within end; NULL when it does not fit. */
static const unsigned char *block(const unsigned char **at, const unsigned char *end, size_t *length)
{
    if (end - *at < 4) return NULL;
    *length = get32(*at);
    if (*length > (size_t)max_output_bytes || (size_t)(end - *at - 4) < *length) return NULL;
    const unsigned char *data = *at + 4;
    *at = data + *length;
    return data;
}

/*
 * The agent's answer: a result is relayed and the process exits with its code; anything else is why the call falls
 * back (a refusal: "declined").
 */
static const char *relay_answer(int fd)
{
    const char *why = NULL;
    unsigned char header[header_bytes];
    if (!read_exactly(fd, header, sizeof header, &why)) return why;
    uint32_t length = get32(header + 5);
    if (memcmp(header, "BRTH", 4) != 0 || (header[4] != 'R' && header[4] != 'N') || length > (uint32_t)max_answer_bytes) return "malformed";
    unsigned char *body = malloc(length ? length : 1);
    if (body == NULL) return "malformed";
    const char *refused = !read_exactly(fd, body, length, &why) ? why : header[4] == 'N' ? "declined" : length < 4 ? "malformed" : NULL;
    if (refused != NULL)
    {
        free(body);
        return refused;
    }
    const unsigned char *at = body + 4, *end = body + length;
    int32_t exit_code = (int32_t)get32(body);
    size_t out_length, err_length;
    const unsigned char *out = block(&at, end, &out_length);
    const unsigned char *err = out ? block(&at, end, &err_length) : NULL;
    if (exit_code < 0 || exit_code > 255 || err == NULL || at != end)
    {
        free(body);
        return "malformed";
    }
    /* The runtime may have closed its end: a failed write is no signal here, as the plugin's own path ignores SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    write_all(1, out, out_length);
    write_all(2, err, err_length);
    _exit(exit_code);
}

static int served(const char *command)
{
    static const char *const verbs[] = { "ADD", "DEL", "CHECK", "GC", "STATUS" }; /* CallFrames.IsServed */
    for (size_t i = 0; command != NULL && i < sizeof verbs / sizeof verbs[0]; i++)
    {
        if (strcmp(command, verbs[i]) == 0) return 1;
    }
    return 0;
}

/* Every variable fits in a request (CallFrames.Fits); a longer one runs in the plugin, as it always did. */
static int fits(void)
{
    for (int i = 0; i < variables; i++)
    {
        const char *value = getenv(call_environment[i]);
        if (value != NULL && strlen(value) > (size_t)max_value_bytes) return 0;
    }
    return 1;
}

__attribute__((constructor)) static void forward(int argc, char **argv, char **envp)
{
    (void)envp;
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) return;
    if (!served(getenv("CNI_COMMAND")) || !fits()) return;
    const char *path = getenv(socket_variable);
    if (path == NULL || *path == '\0') path = default_socket;
    else if (strcmp(path, "off") == 0) return;
    if (strlen(path) > max_path_bytes) return;

    const char *failure = NULL;
    int fd = connect_agent(path, &failure);
    if (fd < 0)
    {
        if (failure != NULL) count(path, failure);
        return;
    }
    /* Too large or unreadable: the plugin says so itself, exactly as it always did. */
    if (read_stdin())
    {
        const char *why = send_request(fd) ? relay_answer(fd) : "closed";
        count(path, why);
    }
    close(fd);
}
