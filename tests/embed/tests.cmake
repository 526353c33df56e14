# The C tests of the embedding API (tests/embed), run by ctest. Included
# from the top-level CMakeLists.txt.
# SPDX-License-Identifier: MIT
add_executable(embed_api_test tests/embed/api_test.c
)
target_link_libraries(embed_api_test PRIVATE lasio_core PkgConfig::LUA
    Threads::Threads m)
lasio_target_options(embed_api_test)

# Under the sanitizers the C tests check leaks too.
if(LASIO_SANITIZE)
    set(LASIO_C_TEST_ENV
        "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
        "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
else()
    set(LASIO_C_TEST_ENV "")
endif()

foreach(t open_close run reentrant step host_dispatch futures threads async
        handler collected_at_close teardown never_early host_timer two_states
        loop_hold
        limits trace_sink trace_record_for inspect_listen)
    add_test(NAME embed-${t} COMMAND embed_api_test ${t})
    set_tests_properties(embed-${t} PROPERTIES TIMEOUT 120
        ENVIRONMENT "${LASIO_C_TEST_ENV}")
endforeach()

# E5: two states, in one thread and in two threads, pass spec runs.
add_executable(embed_threads_test tests/embed/threads_test.c
)
target_link_libraries(embed_threads_test PRIVATE lasio_core PkgConfig::LUA
    Threads::Threads m)
lasio_target_options(embed_threads_test)
add_test(NAME embed-two-states-specs
    COMMAND embed_threads_test ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})
set(LASIO_THREADS_TEST_ENV ${LASIO_C_TEST_ENV})
if(LASIO_SANITIZE)
    list(APPEND LASIO_THREADS_TEST_ENV LASIO_TEST_TIME_FACTOR=5
        LASIO_SANITIZED=1)
endif()
set_tests_properties(embed-two-states-specs PROPERTIES TIMEOUT 600
    ENVIRONMENT "${LASIO_THREADS_TEST_ENV}")

# E4: the allocation-failure sweep. lasio's own malloc & co are wrapped at
# link time so that they count and fail too.
add_executable(embed_oom_test tests/embed/oom_test.c
)
target_link_libraries(embed_oom_test PRIVATE lasio_core PkgConfig::LUA
    Threads::Threads m)
target_link_options(embed_oom_test PRIVATE
    -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=strdup)
lasio_target_options(embed_oom_test)
foreach(s open run step cfuture close dispatch module capped trace)
    add_test(NAME embed-oom-${s} COMMAND embed_oom_test ${s})
    set_tests_properties(embed-oom-${s} PROPERTIES TIMEOUT 1200
        ENVIRONMENT "${LASIO_C_TEST_ENV}")
endforeach()

# The installation: cmake --install to a temporary prefix, stock lua5.4,
# pkg-config and the embed example against the installed files.
add_test(NAME install
    COMMAND sh ${CMAKE_SOURCE_DIR}/tests/embed/install_test.sh
        ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
set_tests_properties(install PROPERTIES TIMEOUT 300)
