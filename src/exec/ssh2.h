/*
 * ssh2.h — libssh2, loaded when the first SSH executor is made (internal to
 * src/exec/): with it comes libcrypto (about 1.6 MB resident just by being
 * mapped), which a plan that runs only local commands should not pay for.
 * Every libssh2 function the executor calls goes through exec_ssh2; below
 * the table, each name is redirected to it.
 */
#ifndef BATON_EXEC_SSH2_H
#define BATON_EXEC_SSH2_H

#include <libssh2.h>
#include <libssh2_sftp.h>

#define SSH2_FUNCS(X) \
	X(libssh2_agent_connect) \
	X(libssh2_agent_disconnect) \
	X(libssh2_agent_free) \
	X(libssh2_agent_get_identity) \
	X(libssh2_agent_init) \
	X(libssh2_agent_list_identities) \
	X(libssh2_agent_userauth) \
	X(libssh2_channel_close) \
	X(libssh2_channel_direct_tcpip_ex) \
	X(libssh2_channel_eof) \
	X(libssh2_channel_process_startup) \
	X(libssh2_channel_free) \
	X(libssh2_channel_get_exit_signal) \
	X(libssh2_channel_get_exit_status) \
	X(libssh2_channel_open_ex) \
	X(libssh2_channel_read_ex) \
	X(libssh2_channel_send_eof) \
	X(libssh2_channel_wait_closed) \
	X(libssh2_channel_write_ex) \
	X(libssh2_exit) \
	X(libssh2_free) \
	X(libssh2_hostkey_hash) \
	X(libssh2_init) \
	X(libssh2_keepalive_config) \
	X(libssh2_keepalive_send) \
	X(libssh2_session_block_directions) \
	X(libssh2_session_callback_set) \
	X(libssh2_session_disconnect_ex) \
	X(libssh2_session_free) \
	X(libssh2_session_handshake) \
	X(libssh2_session_hostkey) \
	X(libssh2_session_init_ex) \
	X(libssh2_session_last_errno) \
	X(libssh2_session_last_error) \
	X(libssh2_session_method_pref) \
	X(libssh2_session_set_blocking) \
	X(libssh2_session_supported_algs) \
	X(libssh2_sftp_close_handle) \
	X(libssh2_sftp_fstat_ex) \
	X(libssh2_sftp_fstatvfs) \
	X(libssh2_sftp_init) \
	X(libssh2_sftp_last_error) \
	X(libssh2_sftp_mkdir_ex) \
	X(libssh2_sftp_open_ex) \
	X(libssh2_sftp_read) \
	X(libssh2_sftp_rename_ex) \
	X(libssh2_sftp_shutdown) \
	X(libssh2_sftp_stat_ex) \
	X(libssh2_sftp_unlink_ex) \
	X(libssh2_sftp_write) \
	X(libssh2_userauth_authenticated) \
	X(libssh2_userauth_list) \
	X(libssh2_userauth_publickey_fromfile_ex) \
	X(libssh2_version)

struct exec_ssh2_api {
#define X(f) __typeof__(&f) f;
	SSH2_FUNCS(X)
#undef X
};

extern struct exec_ssh2_api exec_ssh2;

/* Loads libssh2 once; NULL on success, else why not (static text). */
const char *exec_ssh2_load(void);

#ifndef EXEC_SSH2_TABLE
#define libssh2_agent_connect exec_ssh2.libssh2_agent_connect
#define libssh2_version exec_ssh2.libssh2_version
#define libssh2_agent_disconnect exec_ssh2.libssh2_agent_disconnect
#define libssh2_agent_free exec_ssh2.libssh2_agent_free
#define libssh2_agent_get_identity exec_ssh2.libssh2_agent_get_identity
#define libssh2_agent_init exec_ssh2.libssh2_agent_init
#define libssh2_agent_list_identities exec_ssh2.libssh2_agent_list_identities
#define libssh2_agent_userauth exec_ssh2.libssh2_agent_userauth
#define libssh2_channel_close exec_ssh2.libssh2_channel_close
#define libssh2_channel_direct_tcpip_ex exec_ssh2.libssh2_channel_direct_tcpip_ex
#define libssh2_channel_eof exec_ssh2.libssh2_channel_eof
#define libssh2_channel_process_startup exec_ssh2.libssh2_channel_process_startup
#define libssh2_channel_free exec_ssh2.libssh2_channel_free
#define libssh2_channel_get_exit_signal exec_ssh2.libssh2_channel_get_exit_signal
#define libssh2_channel_get_exit_status exec_ssh2.libssh2_channel_get_exit_status
#define libssh2_channel_open_ex exec_ssh2.libssh2_channel_open_ex
#define libssh2_channel_read_ex exec_ssh2.libssh2_channel_read_ex
#define libssh2_channel_send_eof exec_ssh2.libssh2_channel_send_eof
#define libssh2_channel_wait_closed exec_ssh2.libssh2_channel_wait_closed
#define libssh2_channel_write_ex exec_ssh2.libssh2_channel_write_ex
#define libssh2_exit exec_ssh2.libssh2_exit
#define libssh2_free exec_ssh2.libssh2_free
#define libssh2_hostkey_hash exec_ssh2.libssh2_hostkey_hash
#define libssh2_init exec_ssh2.libssh2_init
#define libssh2_keepalive_config exec_ssh2.libssh2_keepalive_config
#define libssh2_keepalive_send exec_ssh2.libssh2_keepalive_send
#define libssh2_session_block_directions exec_ssh2.libssh2_session_block_directions
#define libssh2_session_callback_set exec_ssh2.libssh2_session_callback_set
#define libssh2_session_disconnect_ex exec_ssh2.libssh2_session_disconnect_ex
#define libssh2_session_free exec_ssh2.libssh2_session_free
#define libssh2_session_handshake exec_ssh2.libssh2_session_handshake
#define libssh2_session_hostkey exec_ssh2.libssh2_session_hostkey
#define libssh2_session_init_ex exec_ssh2.libssh2_session_init_ex
#define libssh2_session_last_errno exec_ssh2.libssh2_session_last_errno
#define libssh2_session_last_error exec_ssh2.libssh2_session_last_error
#define libssh2_session_method_pref exec_ssh2.libssh2_session_method_pref
#define libssh2_session_set_blocking exec_ssh2.libssh2_session_set_blocking
#define libssh2_session_supported_algs exec_ssh2.libssh2_session_supported_algs
#define libssh2_sftp_close_handle exec_ssh2.libssh2_sftp_close_handle
#define libssh2_sftp_fstat_ex exec_ssh2.libssh2_sftp_fstat_ex
#define libssh2_sftp_fstatvfs exec_ssh2.libssh2_sftp_fstatvfs
#define libssh2_sftp_init exec_ssh2.libssh2_sftp_init
#define libssh2_sftp_last_error exec_ssh2.libssh2_sftp_last_error
#define libssh2_sftp_mkdir_ex exec_ssh2.libssh2_sftp_mkdir_ex
#define libssh2_sftp_open_ex exec_ssh2.libssh2_sftp_open_ex
#define libssh2_sftp_read exec_ssh2.libssh2_sftp_read
#define libssh2_sftp_rename_ex exec_ssh2.libssh2_sftp_rename_ex
#define libssh2_sftp_shutdown exec_ssh2.libssh2_sftp_shutdown
#define libssh2_sftp_stat_ex exec_ssh2.libssh2_sftp_stat_ex
#define libssh2_sftp_unlink_ex exec_ssh2.libssh2_sftp_unlink_ex
#define libssh2_sftp_write exec_ssh2.libssh2_sftp_write
#define libssh2_userauth_authenticated exec_ssh2.libssh2_userauth_authenticated
#define libssh2_userauth_list exec_ssh2.libssh2_userauth_list
#define libssh2_userauth_publickey_fromfile_ex exec_ssh2.libssh2_userauth_publickey_fromfile_ex
#endif

#endif
