# The fuzz targets (fuzz/, README.md "Fuzzing"). Included from the
# top-level CMakeLists.txt.
# With LASIO_FUZZ (clang): one libFuzzer executable per target, built
#   against the runtime compiled with ASan, UBSan and coverage.
# Without it, in the normal build: the test "fuzz", which runs
#   scripts/fuzz.sh for a few seconds per target, when a clang that links
#   -fsanitize=fuzzer is installed (Debian: clang, libclang-rt-14-dev).
# SPDX-License-Identifier: MIT

# The targets whose harness is a Lua function run by fuzz/luadriver.c.
set(LASIO_FUZZ_LUA_TARGETS http_request http_response http_server
    websocket_server websocket_client stream_reader)
# The targets with a harness in C of their own (fuzz/<name>.c).
set(LASIO_FUZZ_C_TARGETS dns_tcp_reply chunk_load copy_values)

if(LASIO_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR "LASIO_FUZZ needs clang (libFuzzer): configure "
            "with -DCMAKE_C_COMPILER=clang, as scripts/fuzz.sh does")
    endif()
    # llhttp is what the HTTP targets mostly exercise: instrument it too.
    target_compile_options(lasio_llhttp PRIVATE ${LASIO_SAN_FLAGS})
    set(LASIO_FUZZ_ALL "")
    foreach(t ${LASIO_FUZZ_LUA_TARGETS})
        add_executable(fuzz_${t} fuzz/luadriver.c)
        target_compile_definitions(fuzz_${t} PRIVATE
            LASIO_FUZZ_SCRIPT="${CMAKE_SOURCE_DIR}/fuzz/${t}.lua"
            LASIO_FUZZ_DIR="${CMAKE_SOURCE_DIR}/fuzz")
        list(APPEND LASIO_FUZZ_ALL fuzz_${t})
    endforeach()
    foreach(t ${LASIO_FUZZ_C_TARGETS})
        add_executable(fuzz_${t} fuzz/${t}.c)
        list(APPEND LASIO_FUZZ_ALL fuzz_${t})
    endforeach()
    # the chunk policy is the command's own (src/cli/), not the library's
    target_sources(fuzz_chunk_load PRIVATE src/cli/chunkmode.c)
    foreach(t ${LASIO_FUZZ_ALL})
        target_include_directories(${t} PRIVATE src ${LIBEVENT_INCLUDE_DIRS})
        target_link_libraries(${t} PRIVATE lasio_core PkgConfig::LUA m)
        lasio_target_options(${t})
        target_compile_options(${t} PRIVATE -fsanitize=fuzzer)
        target_link_options(${t} PRIVATE -fsanitize=fuzzer)
    endforeach()
    add_custom_target(fuzz_targets DEPENDS ${LASIO_FUZZ_ALL})
elseif(NOT LASIO_SANITIZE)
    # Is there a clang that builds a libFuzzer executable?
    find_program(LASIO_CLANG NAMES clang clang-14)
    set(LASIO_HAVE_LIBFUZZER OFF)
    if(LASIO_CLANG)
        set(probe ${CMAKE_BINARY_DIR}/fuzz_probe.c)
        file(WRITE ${probe} "#include <stddef.h>\n#include <stdint.h>\n"
            "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
            "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) "
            "{ (void)d; (void)n; return 0; }\n")
        execute_process(COMMAND ${LASIO_CLANG} -fsanitize=fuzzer,address
            ${probe} -o ${CMAKE_BINARY_DIR}/fuzz_probe
            RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
        if(rc EQUAL 0)
            set(LASIO_HAVE_LIBFUZZER ON)
        endif()
    endif()
    if(LASIO_HAVE_LIBFUZZER)
        add_test(NAME fuzz COMMAND ${CMAKE_SOURCE_DIR}/scripts/fuzz.sh 10
            WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
        set_tests_properties(fuzz PROPERTIES TIMEOUT 900)
    else()
        message(STATUS "clang with libFuzzer not found: the test \"fuzz\" "
            "is left out (install clang and libclang-rt-14-dev)")
    endif()
endif()
