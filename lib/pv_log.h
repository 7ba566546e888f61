/* Minimal leveled logging to stderr. Thread safe (one write per message). */
#ifndef PLUGVIRT_PV_LOG_H
#define PLUGVIRT_PV_LOG_H

enum pv_log_level { PV_LOG_ERROR, PV_LOG_WARNING, PV_LOG_INFO, PV_LOG_DEBUG };

void pv_log_set_level(enum pv_log_level level);
void pv_log_set_program(const char *program_name);
void pv_log(enum pv_log_level level, const char *format, ...) __attribute__((format(printf, 2, 3)));

#define pv_log_error(...) pv_log(PV_LOG_ERROR, __VA_ARGS__)
#define pv_log_warning(...) pv_log(PV_LOG_WARNING, __VA_ARGS__)
#define pv_log_info(...) pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_log_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)

#endif
